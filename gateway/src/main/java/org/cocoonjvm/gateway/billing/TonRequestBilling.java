package org.cocoonjvm.gateway.billing;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.Supplier;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.ledger.LeaseLostException;
import org.cocoonjvm.billing.ledger.LedgerUnavailableException;
import org.cocoonjvm.billing.pricing.Cost;
import org.cocoonjvm.billing.pricing.CostOverflowException;
import org.cocoonjvm.billing.pricing.Multipliers;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.UsageCost;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link RequestBilling} over ton-billing: Cocoon's pricing formula and an {@link AccountBook}.
 * A request reserves its maximum cost (Cocoon's rule: max tokens plus request size, at the
 * highest coefficient) and is charged its priced usage when it ends; the rest is released. Each
 * settlement is stored with a {@link RequestRecord} (worker, token counts, client cost, worker fee)
 * for the operator's audit.
 *
 * <p>Pricing is pure and runs on the caller's thread; every call into the book runs on
 * {@code ledger}, an executor of the owner's choosing: a pool of its own for a database-backed
 * book (never an event loop), or {@code Runnable::run} for the in-memory one.
 *
 * <p>While the book's database is unreachable, a reservation or an account read is refused
 * {@code LEDGER_UNAVAILABLE} (503 with {@code Retry-After}), and a settlement the ledger does not
 * take is kept by {@link PendingSettlements} and retried until it does: the cost the client is told
 * is the cost it is charged. It is written to a {@link PendingJournal} first, so a gateway stopped
 * before the ledger's return bills it at its next start. While it hangs ({@link AccountBook#stall}), they are refused or kept
 * at once, without a call that would queue behind the hung ones.
 */
public final class TonRequestBilling implements RequestBilling, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(TonRequestBilling.class);
    /**
     * What a client refused for a ledger outage is told to wait: a database restart or failover
     * takes seconds, and the gateway's own lease keeper looks again every 5.
     */
    private static final int LEDGER_RETRY_AFTER_SECONDS = 2;

    private final AccountBook accounts;
    private final Executor ledger;
    private final Function<String, PriceSchedule> prices;
    private final String depositAddress;
    private final PendingJournal journal;
    private final PendingSettlements pending;
    private volatile ProgressCounter progressCounter = ProgressCounter.NONE;
    /**
     * Requests recovery ended before {@link #reportRecovered} was called, with their error codes;
     * its lock guards {@link #reporter}.
     */
    private final List<Map.Entry<RecoveredReservation, String>> unreported = new ArrayList<>();
    private RecoveryReporter reporter;

    /**
     * @param ledger         runs the book's calls
     * @param prices         the schedule for each model name; never null for a model that is served
     * @param depositAddress the gateway's TON wallet that clients pay into; null if it takes no deposits
     */
    public TonRequestBilling(AccountBook accounts, Executor ledger, Function<String, PriceSchedule> prices,
                             String depositAddress) {
        this(accounts, ledger, prices, depositAddress, PendingJournal.inMemory());
    }

    /**
     * @param journal where settlements the ledger did not take are kept for the next start, which
     *                {@link PendingJournal#replay replays} them before its recovery
     */
    public TonRequestBilling(AccountBook accounts, Executor ledger, Function<String, PriceSchedule> prices,
                             String depositAddress, PendingJournal journal) {
        this.accounts = Objects.requireNonNull(accounts, "accounts");
        this.ledger = Objects.requireNonNull(ledger, "ledger");
        this.prices = Objects.requireNonNull(prices, "prices");
        this.depositAddress = depositAddress;
        this.journal = Objects.requireNonNull(journal, "journal");
        this.pending = new PendingSettlements(ledger, accounts, journal);
    }

    @Override
    public PriceSchedule schedule(String model) {
        return prices.apply(model);
    }

    @Override
    public CompletionStage<Charge> reserve(String requestId, String keyId, String accountId, String model, long maxTokens,
                                           long promptBytes) {
        PriceSchedule schedule = prices.apply(model);
        if (schedule == null) {
            return CompletableFuture.failedStage(new ApiException(ErrorKind.MODEL_NOT_FOUND, "model",
                    "The model '" + model + "' has no price on this gateway."));
        }
        long amount = Pricing.reservation(schedule, maxTokens, promptBytes);
        return onLedger("could not hold funds for this request", () -> {
            try {
                return new LedgerCharge(requestId, model, schedule,
                        accounts.reserve(accountId, amount, new ReservationLabel(requestId, keyId, model)));
            } catch (InsufficientBalanceException e) {
                // What GET /v1/models shows as reserved_nanoton_per_token, and what the hold is made of.
                throw new ApiException(ErrorKind.INSUFFICIENT_BALANCE, null, "This request may cost up to " + amount
                        + " nanoTON: it is held at " + Pricing.reservedPerToken(schedule).toPlainString() + " nanoTON per token"
                        + " (the price at the highest worker coefficient) for up to " + (maxTokens + promptBytes) + " tokens, "
                        + maxTokens + " for the completion (max_tokens, or the model's context window without it) and "
                        + promptBytes + " for the prompt (its UTF-8 bytes and the chat template's tokens); the account has "
                        + e.availableNanoton() + " nanoTON available. " + (depositAddress == null
                        ? "This gateway takes no deposits: ask its operator to credit the account,"
                        : "Top up (GET /v1/account says how),") + " or set a lower max_tokens to lower the hold.");
            } catch (UnknownAccountException e) {
                throw new ApiException(ErrorKind.INSUFFICIENT_BALANCE, null, "The account of this API key holds no funds yet.");
            } catch (LeaseLostException e) {
                // Another process now speaks for this gateway id, or a sweep fenced it: it is stopping.
                // Logged once, by whoever found it first (the ledger's lease keeper), not per request.
                log.debug("refusing request {}: {}", requestId, e.getMessage());
                throw new ApiException(ErrorKind.SHUTTING_DOWN, null, "This gateway is shutting down; send the request to another one.");
            }
        });
    }

    @Override
    public CompletionStage<AccountView> account(String accountId) {
        return onLedger("could not read the account", () -> {
            Account account = accounts.open(accountId);
            AccountState state = accounts.balance(accountId);
            return new AccountView(accountId, state.balanceNanoton(), state.reservedNanoton(), state.spentNanoton(),
                    depositAddress, account.depositComment());
        });
    }

    @Override
    public CompletionStage<Optional<BilledRequest>> request(String accountId, String requestId) {
        return onLedger("could not read the request", () -> accounts.request(accountId, requestId));
    }

    /**
     * A client's call into the book, on {@code ledger}; refused {@code LEDGER_UNAVAILABLE} (saying
     * the gateway {@code what}) when the book is away. The stall is checked before the call is
     * queued and again when it runs: calls queued in the seconds before the stall was seen would
     * otherwise each wait out the hung database in turn.
     */
    private <T> CompletionStage<T> onLedger(String what, Supplier<T> call) {
        if (accounts.stall().isPresent()) {
            return CompletableFuture.failedStage(ledgerUnavailable(what));
        }
        return CompletableFuture.supplyAsync(() -> {
            if (accounts.stall().isPresent()) {
                throw ledgerUnavailable(what);
            }
            try {
                return call.get();
            } catch (LedgerUnavailableException unreachable) {
                throw ledgerUnavailable(what);
            }
        }, ledger);
    }

    /**
     * Nothing was done (the transaction rolled back): the client may simply come back. Not logged
     * per request (the access log has each, the lease keeper's beats say what the database answers).
     */
    private static ApiException ledgerUnavailable(String what) {
        return ApiException.retryLater(ErrorKind.LEDGER_UNAVAILABLE, "The gateway " + what + ": its ledger is unavailable. "
                + "Try again shortly.", LEDGER_RETRY_AFTER_SECONDS);
    }

    @Override
    public Optional<String> ledgerOutage() {
        return accounts.outage();
    }

    @Override
    public Map<String, Long> ledgerRacesRunAgain() {
        return accounts.racesRunAgain();
    }

    @Override
    public int settlementsPending() {
        return pending.size();
    }

    /**
     * Call once no request can settle any more (the gateway stopped): settlements the ledger has
     * still not taken are in the journal, which the next start replays before its recovery; those
     * it does not hold (a journal in memory, or one that could not be written) stay open for that
     * recovery, which bills their last checkpoints.
     */
    @Override
    public void close() {
        pending.close();
        int left = pending.size();
        if (left == 0) {
            return;
        }
        int lost = pending.notJournaled();
        if (lost == 0) {
            log.warn("ledger: {} settlements ({} nanoTON) were not taken by the ledger before the stop; they are kept in {}, "
                    + "and the next start with this --data-dir bills them as their clients were told, before it ends the "
                    + "reservations left open", left, pending.nanoton(), journal.file().orElseThrow());
        } else if (journal.file().isEmpty()) {
            log.warn("ledger: {} settlements ({} nanoTON) were never taken by the ledger and are kept in memory only; their "
                    + "reservations stay open and the next start ends them at their last checkpoints", left, pending.nanoton());
        } else {
            log.warn("ledger: {} settlements ({} nanoTON) were not taken by the ledger before the stop; {} of them are kept "
                    + "in {} and the next start bills them as their clients were told; {} could not be written there (logged "
                    + "when it failed): the next start ends their reservations at their last checkpoints", left,
                    pending.nanoton(), left - lost, journal.file().get(), lost);
        }
    }

    /**
     * Ends what this gateway's previous run left open ({@link AccountBook#recoverOpenReservations}:
     * once, at start, before any request), and reports each request as {@link
     * RecoveryReporter#GATEWAY_RESTARTED}: billed by this process, so logged and counted by it, once
     * the reporter is set if it is not yet (see {@link #reportRecovered}).
     *
     * @return what it ended
     */
    public List<RecoveredReservation> recoverOpenReservations() {
        List<RecoveredReservation> ended = accounts.recoverOpenReservations();
        report(ended, RecoveryReporter.GATEWAY_RESTARTED);
        return ended;
    }

    /**
     * What a sweep of the ledger ended in this process (the lease keeper's), reported as {@link
     * RecoveryReporter#GATEWAY_LEASE_EXPIRED}.
     */
    public void swept(List<RecoveredReservation> ended) {
        report(ended, RecoveryReporter.GATEWAY_LEASE_EXPIRED);
    }

    /** Told to the reporter, or kept for it until one is set. */
    private void report(List<RecoveredReservation> ended, String errorCode) {
        RecoveryReporter to;
        synchronized (unreported) {
            if (reporter == null) {
                ended.forEach(r -> unreported.add(Map.entry(r, errorCode)));
                return;
            }
            to = reporter;
        }
        ended.forEach(r -> to.ended(r, errorCode));
    }

    @Override
    public void reportRecovered(RecoveryReporter reporter) {
        Objects.requireNonNull(reporter, "reporter");
        synchronized (unreported) {
            this.reporter = reporter;
            unreported.forEach(e -> reporter.ended(e.getKey(), e.getValue()));
            unreported.clear();
        }
    }

    @Override
    public void countProgress(ProgressCounter counter) {
        progressCounter = Objects.requireNonNull(counter, "counter");
    }

    @Override
    public CompletionStage<Void> checkpoint(Map<Charge, Metered> usedSoFar) {
        // A payment round checkpoints every running request every few milliseconds: each request's
        // tokens are counted once, and each channel's id written out once a round.
        Map<Reservation, Long> progress = new HashMap<>(usedSoFar.size() * 2);
        Map<Reservation, WorkerShare> shares = new HashMap<>(usedSoFar.size() * 2);
        List<LedgerCharge> charges = new ArrayList<>(usedSoFar.size());
        Map<ChannelId, String> channelHex = new HashMap<>();
        usedSoFar.forEach((charge, metered) -> {
            if (!(charge instanceof LedgerCharge ours)) {
                throw new IllegalArgumentException("a charge from another billing: " + charge);
            }
            // Client cost and worker fee of the same usage: after a crash the worker is paid the
            // fee of exactly what the client is billed.
            TokenCounts tokens = tokens(metered.usage());
            Cost cost = ours.priced(tokens);
            progress.put(ours.reservation, cost.clientCost());
            shares.put(ours.reservation, new WorkerShare(channelHex.computeIfAbsent(metered.channel(), ChannelId::hex),
                    cost.workerFee(), metered.workerId(), tokens));
            charges.add(ours);
        });
        return progress(() -> {
            accounts.recordProgress(progress, shares);
            for (LedgerCharge charge : charges) {
                charge.recorded(progress.get(charge.reservation));  // committed: the ledger bills at least this now
            }
            return null;
        });
    }

    /**
     * Records progress on {@code ledger}; failed with {@link LedgerUnavailableException} at once
     * when the book's storage hangs ({@link AccountBook#stall}), before the call is queued and
     * again when it runs: a call that waits behind the hung ones holds its payment round as long.
     */
    private <T> CompletionStage<T> progress(Supplier<T> record) {
        Optional<String> stall = accounts.stall();
        if (stall.isPresent()) {
            return CompletableFuture.failedStage(new LedgerUnavailableException("record progress", stall.get()));
        }
        return CompletableFuture.supplyAsync(() -> {
            accounts.stall().ifPresent(why -> {
                throw new LedgerUnavailableException("record progress", why);
            });
            return record.get();
        }, ledger);
    }

    private static TokenCounts tokens(Usage usage) {
        return new TokenCounts(Integer.toUnsignedLong(usage.getPromptTokens()), Integer.toUnsignedLong(usage.getCachedTokens()),
                Integer.toUnsignedLong(usage.getCompletionTokens()), Integer.toUnsignedLong(usage.getReasoningTokens()));
    }

    /** Used by one relay, on its event loop; the book's side runs on {@code ledger}. */
    private final class LedgerCharge implements Charge {
        private final String requestId;
        private final String model;
        private final PriceSchedule schedule;
        private final Reservation reservation;
        private Settling settled;
        /**
         * The cost its committed checkpoints told the {@link ProgressCounter}; -1 once the request
         * took it back at its end ({@link #takeCountedProgress}). Checkpoints commit on the ledger's
         * threads, the end runs on the relay's event loop.
         */
        private final AtomicLong counted = new AtomicLong();

        LedgerCharge(String requestId, String model, PriceSchedule schedule, Reservation reservation) {
            this.requestId = requestId;
            this.model = model;
            this.schedule = schedule;
            this.reservation = reservation;
        }

        @Override
        public Settling settle(String workerId, ChannelId channel, Usage usage) {
            if (settled != null) {
                return settled;
            }
            UsageCost priced;
            PendingSettlement bill;
            if (usage.getPromptTokens() == 0 && usage.getCompletionTokens() == 0) {
                priced = new UsageCost(0, 0, 0);
                bill = new PendingSettlement(requestId, reservation, null);
            } else {
                TokenCounts tokens = tokens(usage);
                Cost cost = Pricing.cost(schedule, tokens);
                RequestRecord record = new RequestRecord(requestId, workerId, channel == null ? null : channel.hex(), model,
                        tokens, cost.clientCost(), cost.workerFee());
                priced = new UsageCost(cost.promptCost(), cost.completionCost(), cost.clientCost());
                bill = new PendingSettlement(requestId, reservation, record);
            }
            // One try here (the book already runs a transaction again after a lost race or a connection lost
            // before its commit); a ledger that is away gets the settlement later, from the background.
            Optional<String> stall = accounts.stall();
            CompletionStage<?> accounted;
            if (stall.isPresent()) {
                // Not queued behind the hung calls: the client has its answer once the journal has it, the bill follows.
                accounted = pending.addLater(bill, new LedgerUnavailableException("settle", stall.get()));
            } else {
                accounted = CompletableFuture.runAsync(() -> {
                    try {
                        // Queued before the stall was seen: kept now rather than waiting out the hung database.
                        Optional<String> since = accounts.stall();
                        if (since.isPresent()) {
                            throw new LedgerUnavailableException("settle", since.get());
                        }
                        bill.bill(accounts);
                    } catch (LedgerUnavailableException e) {
                        pending.add(bill, e);
                    }
                }, ledger);
            }
            accounted.whenComplete((ok, failure) -> {
                Throwable cause = failure instanceof CompletionException && failure.getCause() != null
                        ? failure.getCause() : failure;
                if (cause instanceof ReservationRecoveredException e) {
                    log.error("request {}: not billed its final {} nanoTON: {} (this gateway lost its lease)", requestId,
                            priced.totalCost(), e.getMessage());
                } else if (failure != null) {
                    log.error("request {}: the ledger refused its settlement ({} nanoTON); reservation {} stays open until "
                            + "the gateway next starts", requestId, priced.totalCost(), reservation.id(), cause);
                }
            });
            settled = new Settling(priced, accounted);
            return settled;
        }

        Cost priced(TokenCounts usedSoFar) {
            return Pricing.cost(schedule, usedSoFar);
        }

        @Override
        public boolean covers(long promptTokens, long completionTokens) {
            // The dearer share of each: all cached where cached tokens cost more than the prompt's, all reasoning likewise.
            Multipliers m = schedule.multipliers();
            TokenCounts most = new TokenCounts(promptTokens, m.cached() > m.prompt() ? promptTokens : 0, completionTokens,
                    m.reasoning() > m.completion() ? completionTokens : 0);
            try {
                return Pricing.cost(schedule, most).clientCost() <= reservation.amountNanoton();
            } catch (CostOverflowException e) {
                return false;
            }
        }

        @Override
        public CompletionStage<Boolean> checkpoint(Usage usedSoFar) {
            long cost = priced(tokens(usedSoFar)).clientCost();
            return progress(() -> {
                boolean recorded = accounts.recordProgress(reservation, cost);
                if (recorded) {
                    recorded(cost);
                }
                return recorded;
            });
        }

        /** A checkpoint recording {@code cost} committed: what it adds is counted, unless the request has ended. */
        void recorded(long cost) {
            while (true) {
                long before = counted.get();
                if (before < 0 || cost <= before) {
                    return;  // ended (its end counts the rest), or a checkpoint no further than an earlier one
                }
                if (counted.compareAndSet(before, cost)) {
                    progressCounter.recorded(model, cost - before);
                    return;
                }
            }
        }

        @Override
        public long takeCountedProgress() {
            return Math.max(0, counted.getAndSet(-1));
        }
    }
}
