package org.cocoonjvm.gateway.billing;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.UsageCost;

/**
 * Money for one request: reserve the most it can cost before it is routed, bill what it used
 * when it ends. Implemented over ton-billing's pricing and account book.
 *
 * <p>The book may block on a database, so everything that touches it returns a stage completed
 * on the book's own threads: callers on an event loop must move back to their context (Vert.x's
 * {@code Future.fromCompletionStage(stage, context)}) before touching request state.
 */
public interface RequestBilling {
    /**
     * @param requestId    the gateway's id of the request, kept with its reservation and its settlement
     * @param keyId        the API key's id, kept with the reservation: a request its gateway never ends
     *                     is reported by whichever process does ({@link #reportRecovered})
     * @param accountId    the API key's account
     * @param maxTokens    the request's max_tokens, or the model's context when it gave none
     * @param promptBytes the prompt's size in UTF-8 bytes (an upper bound on its tokens)
     * @return the reservation; failed with an {@link org.cocoonjvm.protocol.openai.ApiException}
     *         {@code INSUFFICIENT_BALANCE} (402), {@code MODEL_NOT_FOUND}, {@code LEDGER_UNAVAILABLE}
     *         (503, the ledger's database is unreachable) or {@code SHUTTING_DOWN} (the lease is
     *         lost), or with an unexpected failure; then nothing is held
     */
    CompletionStage<Charge> reserve(String requestId, String keyId, String accountId, String model, long maxTokens,
                                    long promptBytes);

    /** A model's prices (what clients pay, what workers earn), or null when it has none. */
    PriceSchedule schedule(String model);

    /**
     * The account behind an API key, opened on first sight so that it has a deposit comment to show.
     * Failed with {@code LEDGER_UNAVAILABLE} while the ledger's database is unreachable.
     */
    CompletionStage<AccountView> account(String accountId);

    /**
     * A request of the account's, as its settlement billed it ({@code AccountBook.request}); empty if
     * the account has none by that id, or none settled yet. Failed with {@code LEDGER_UNAVAILABLE}
     * while the ledger's database is unreachable.
     */
    CompletionStage<Optional<BilledRequest>> request(String accountId, String requestId);

    /** Why the ledger cannot be reached, while it is known not to be (see {@code AccountBook.outage}); empty otherwise. */
    default Optional<String> ledgerOutage() {
        return Optional.empty();
    }

    /** The ledger's transactions run again after a lost race, by race (see {@code AccountBook.racesRunAgain}). */
    default Map<String, Long> ledgerRacesRunAgain() {
        return Map.of();
    }

    /** Settlements the ledger has not taken yet and that are being retried in the background. */
    default int settlementsPending() {
        return 0;
    }

    /**
     * Records durably, in one write, that each request has used at least its {@link Usage}, and
     * the worker fee of that usage on its channel: the payment round's checkpoint (see
     * {@link ChannelBilling}). Requests already settled are skipped; their settlement charges at
     * least this, and its audit record holds their fee.
     *
     * @param usedSoFar charges this billing issued, with their usage so far
     * @return completes once it is durable; failed with the ledger's failure, then nothing is
     *         recorded and the caller must not pay for this usage yet
     */
    CompletionStage<Void> checkpoint(Map<Charge, Metered> usedSoFar);

    /**
     * Tells {@code counter} of the cost that checkpoints record while requests run: for each
     * request, what a committed checkpoint adds to what the earlier ones recorded, until the
     * request takes the sum back at its end ({@link Charge#takeCountedProgress}). The gateway's
     * metrics count a long stream's cost as the ledger records it (audit V, V-3), and only the rest
     * when it ends. Set once, before any request; without it, nothing is counted.
     */
    default void countProgress(ProgressCounter counter) {
    }

    /**
     * Tells {@code reporter} of each request the ledger's recovery ended at its last checkpoint: those
     * of this gateway's previous run that it left running (a crash), ended at this start, and later
     * those of other gateways whose lease expired, ended by this one's sweeps. Their gateway wrote
     * no access-log line and counted nothing for them; the process that bills them does (audit V,
     * V-8). Set once, before any request; those ended before it is set are told as it is.
     */
    default void reportRecovered(RecoveryReporter reporter) {
    }

    /** Where the requests recovery ended are logged and counted. */
    @FunctionalInterface
    interface RecoveryReporter {
        /** The error code of a request ended by its own gateway's next start: its previous run died running it. */
        String GATEWAY_RESTARTED = "gateway_restarted";
        /** The error code of a request of another gateway whose lease expired, ended by this one's sweep. */
        String GATEWAY_LEASE_EXPIRED = "gateway_lease_expired";

        /**
         * @param errorCode {@link #GATEWAY_RESTARTED} or {@link #GATEWAY_LEASE_EXPIRED}
         */
        void ended(RecoveredReservation request, String errorCode);
    }

    /** Where a request's cost recorded by checkpoints is counted, per model (called on the ledger's threads). */
    @FunctionalInterface
    interface ProgressCounter {
        ProgressCounter NONE = (model, nanoton) -> { };

        /** Checkpoints recorded {@code nanoton} more of the cost of a request for {@code model}. */
        void recorded(String model, long nanoton);
    }

    /**
     * A request's usage so far, metered by the attempt that runs on payment channel {@code channel},
     * on worker {@code workerId}.
     */
    record Metered(Usage usage, ChannelId channel, String workerId) {}

    /** One request's reservation; settled exactly once, whatever happens to the request. */
    interface Charge {
        /**
         * Prices the usage at once and bills it: zero usage releases the reservation. A second call
         * returns the first result and bills nothing.
         *
         * @param channel the payment channel of the attempt that produced {@code usage}, on which its
         *                worker fee is owed (kept with the audit record, so a restarted gateway pays
         *                it); null when the attempt runs on none
         */
        Settling settle(String workerId, ChannelId channel, Usage usage);

        /**
         * Records durably that the request has used at least {@code usedSoFar}; a crash after the
         * stage completes bills at least that much. Call it before acknowledging that usage to
         * anyone (before sending a worker a payment state that covers it).
         *
         * @return true if recorded, false if the request was already settled
         */
        CompletionStage<Boolean> checkpoint(Usage usedSoFar);

        /**
         * Whether this request's reservation covers a usage of {@code promptTokens} and
         * {@code completionTokens}, priced as {@link #settle} prices it, whatever their cached and
         * reasoning shares: a usage bound is widened past what the hold was made of only within
         * what it holds.
         */
        boolean covers(long promptTokens, long completionTokens);

        /**
         * The nanoTON of this request's cost that its committed checkpoints told the
         * {@link ProgressCounter} so far; from this call on, none tells it any more. Called once,
         * as the request is reported: its settled cost less this is what its end counts, so the
         * counter's sum over the request is its cost exactly, whichever way the race goes between
         * a checkpoint's commit and the end.
         */
        long takeCountedProgress();
    }

    /**
     * @param cost      what the client pays, known as soon as the usage is
     * @param accounted completes once the ledger holds the settlement, or, when the ledger could
     *                  not be reached, once the settlement is kept for a background retry that
     *                  charges {@code cost} as soon as it is back, and, with a journal on disk,
     *                  is written there first, so that a gateway stopped before then bills
     *                  {@code cost} at its next start (with a journal in memory only, that start
     *                  ends the reservation at its last checkpoint, the usage recorded before
     *                  it). Failed if recovery had already ended the
     *                  reservation (this gateway lost its lease), in which case that checkpoint is
     *                  what was billed, or if the ledger refused the settlement outright
     */
    record Settling(UsageCost cost, CompletionStage<?> accounted) {
    }
}
