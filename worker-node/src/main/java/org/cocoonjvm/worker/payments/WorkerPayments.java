package org.cocoonjvm.worker.payments;

import io.vertx.core.json.JsonArray;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.ChannelAccepted;
import org.cocoonjvm.protocol.grpc.ChannelClosingOnChain;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.GenerationException;

/**
 * The worker's side of its payment channels: its key, the channels gateways opened to it, each
 * channel's latest verified state (stored durably before it counts), and the credit window that
 * pauses a channel's sequences while the gateway owes more than it allows.
 *
 * <p>Owns the key and the accounts, by channel; the steps of a channel's life on chain are its
 * parts, each over the same accounts: {@link ChannelOffers} (a channel offered: checked and
 * opened), {@link CooperativeCloses} (closes the gateway signs, and every close's payout) and
 * {@link CloseWatch} (uncooperative closes, started here or watched for on chain). They log under
 * this class's name, the one operators and tests filter the payments' log by.
 */
public final class WorkerPayments implements CreditGate {
    private final WorkerPaymentOptions options;
    private final ChannelStore store;
    private final LifetimeTokens tokens;
    private final PaymentKeyPair key;
    private final Map<ChannelId, ChannelAccount> channels = new ConcurrentHashMap<>();
    private final List<Runnable> onPayment = new CopyOnWriteArrayList<>();
    private final Unbilled unbilled = new Unbilled();
    /** Done unless a gateway session is opening its channel: see {@link #channelOpening}. */
    private volatile CompletableFuture<Void> opening = CompletableFuture.completedFuture(null);

    /** Null: channels are taken on the gateway's word, off chain only. */
    private final OnChainSettlement chain;
    private final ChannelOffers offers;
    private final CooperativeCloses closes;
    private final CloseWatch watch;

    public WorkerPayments(WorkerPaymentOptions options) {
        this(options, null);
    }

    /**
     * @param chain checks each offered channel's contract before any credit is given, and closes
     *              it; null takes off-chain channels on the gateway's word (development and the demo)
     */
    public WorkerPayments(WorkerPaymentOptions options, OnChainSettlement chain) {
        if (chain != null) {
            ChannelOffers.payout(options);
        }
        this.chain = chain;
        this.options = options;
        this.store = new ChannelStore(options.stateDir());
        this.key = store.key(new SecureRandom());
        this.tokens = new LifetimeTokens(options.stateDir());
        // Reloaded states show in /status at once; prices arrive when the gateway registers the worker.
        for (ChannelStore.Stored stored : store.loadAll()) {
            channels.put(stored.terms().channelId(), new ChannelAccount(stored, store, options.creditWindowNanoton()));
        }
        this.offers = new ChannelOffers(options, chain, store, key, channels);
        this.closes = new CooperativeCloses(options, chain, key, channels);
        this.watch = new CloseWatch(chain, key, channels, closes);
    }

    public PaymentPublicKey publicKey() {
        return key.publicKey();
    }

    /** Whether channels are checked and settled on chain. */
    public boolean onChain() {
        return chain != null;
    }

    public String payoutAddress() {
        return options.payoutAddress();
    }

    /**
     * A gateway registered this worker with {@code terms}: opens the channel (or takes it up again
     * with its stored state) and returns the worker's signed initial state to send back.
     *
     * With a chain client this blocks on the chain: the contract at {@code channel_address} must be
     * OPEN, be this channel, take the gateway's and this worker's keys, pay out to this worker's
     * payout address, and the states accepted are capped by the gateway's deposit there.
     *
     * @throws IllegalArgumentException when the terms are malformed, or the channel is known under
     *                                  another gateway key
     * @throws ChainException           when the channel on chain is not what the terms say
     */
    public ChannelAccepted open(PaymentChannel terms) {
        return offers.open(terms);
    }

    /**
     * After a payment on {@code channel}: the request for the gateway's close signature when the
     * channel owes enough to settle on chain, once per channel; empty otherwise.
     */
    public Optional<CloseRequest> closeRequest(ChannelId channel) {
        return closes.closeRequest(channels.get(channel), false);
    }

    /**
     * At shutdown: the requests for the gateway's close signature of every on-chain channel still
     * open that owes more than its close costs (ChannelSettlement.onShutdown). Each one left open
     * for holding less is logged: an owner told a stop closes the channel found it open, with no
     * word why (audit M, M-3). Blocking.
     */
    public List<CloseRequest> closeRequestsAtShutdown() {
        return closes.atShutdown();
    }

    /**
     * After a session registered this worker on {@code current}: the close requests of the same
     * gateway's other open on-chain channels that owe enough to settle. Such a channel was replaced
     * while an earlier session closed it, and that session ended before the close was signed; it
     * gets no more payments to ask again at. One reloaded at start counts as taken up again: its
     * gateway, whose key pays {@code current}, never offers a replaced channel again, and a worker
     * restarted after a crash mid-drain left it open with its earnings in it (audit P, P-1).
     * Blocking.
     */
    public List<CloseRequest> closeRequestsBesides(ChannelId current) {
        return closes.besides(current);
    }

    /**
     * The session the close requests went out on ended before their CloseSigned: the gateway
     * signs a close only on the session that asked (it waits for the channel's running requests
     * first), so each such channel asks again on the next session, at its next payment.
     */
    public void sessionEnded() {
        channels.keySet().forEach(this::closeNotAsked);
        opening.complete(null);
    }

    /** A close request prepared for {@code channel} did not go out (its session ended meanwhile): it is asked again later. */
    public void closeNotAsked(ChannelId channel) {
        closes.notAsked(channel);
    }

    /**
     * A session said Hello: its gateway may name the channel it offers in requests sent the moment
     * it has registered this worker, before this worker has opened it (on chain, after reading the
     * contract). Such requests wait until the returned Runnable runs instead of being refused
     * {@code payment_required}, which the gateway's clients saw as 502s (audit G).
     *
     * @return to run once the session's channel is open or refused, or it had none: waiting
     *         requests go on (the session's end does it too, see {@link #sessionEnded})
     */
    public Runnable channelOpening() {
        CompletableFuture<Void> pending = new CompletableFuture<>();
        opening = pending;
        return () -> pending.complete(null);
    }

    /** How long a request waits for the channel it names to be opened. */
    static final long OPENING_WAIT_MS = 10_000;
    private static final CompletableFuture<Void> READY = CompletableFuture.completedFuture(null);

    /**
     * When {@code request} may be submitted: at once, unless it names a channel this worker has not
     * opened (with prices) while a session is opening one; then once that is done, or after
     * {@link #OPENING_WAIT_MS}. Submitting meters it, which refuses a channel still unknown.
     *
     * @throws GenerationException as {@link #requireChannel}
     */
    public CompletableFuture<Void> ready(GenerateRequest request) {
        requireChannel(request);
        CompletableFuture<Void> pending = opening;
        if (pending.isDone() || request.getChannelId().isEmpty()) {
            return READY;
        }
        ChannelAccount account;
        try {
            account = channels.get(ChannelId.fromBytes(request.getChannelId().toByteArray()));
        } catch (IllegalArgumentException malformed) {
            return READY;  // metering refuses it
        }
        if (account != null && account.hasPrices()) {
            return READY;
        }
        return pending.copy().completeOnTimeout(null, OPENING_WAIT_MS, TimeUnit.MILLISECONDS);
    }

    /**
     * The gateway signed the close: sends it on chain (blocking). The channel is then done (it
     * stays in {@code /status} as closed); the gateway opens a new one on the next session.
     *
     * @throws IllegalArgumentException when the close does not pay the latest accepted state
     */
    public void closeSigned(CloseSigned signed) {
        closes.signed(signed);
    }

    /**
     * The time on the clock the settlement rules measure a gateway's silence with: what
     * {@link #settleWithoutGateway}'s {@code lastHeard} must be read from.
     */
    public Instant now() {
        return chain == null ? Instant.now() : chain.now();
    }

    /**
     * While the gateway is gone (last heard at {@code lastHeard}): starts the uncooperative close
     * of each open on-chain channel worth it once the silence passes the limit; {@link #watchChain}
     * finishes it after the quarantine. Blocking; call it periodically off the event loop.
     */
    public void settleWithoutGateway(Instant lastHeard) {
        watch.settleWithoutGateway(lastHeard);
    }

    /** How often {@link #watchChain} should run; null off chain. */
    public Duration watchEvery() {
        return chain == null ? null : chain.watchEvery();
    }

    /**
     * Reads each on-chain channel still open here for an uncooperative close, whoever started it,
     * session or not: a gateway may start one with an older state than the latest it signed, and
     * the contract then pays that older state unless this worker answers it with the latest
     * before the quarantine ends. A channel found closing takes no new requests; one the gateway
     * started with less than this worker holds is challenged once (the contract takes one answer);
     * each is finished, paying out, once its quarantine and conditional-close time are over.
     * Blocking; call it every {@link #watchEvery} off the event loop.
     */
    public void watchChain() {
        watch.watchChain();
    }

    /**
     * Whether channel {@code id} is closing on chain and nothing paid on it from now can count: a
     * session paid over it should end, so that the next one is paid over a new channel.
     */
    public boolean leaves(ChannelId id) {
        return watch.leaves(id);
    }

    /**
     * What its gateway is told of channel {@code id} closing on chain (see {@link #watchChain}):
     * empty unless a close runs on it.
     */
    public Optional<ChannelClosingOnChain> closingOnChain(ChannelId id) {
        return watch.closingOnChain(id);
    }

    /**
     * A payment from a gateway, parsed and not yet verified: verified, stored, then counted; paused
     * sequences resume.
     *
     * @throws VoucherException when the state breaks a rule, or names a channel this worker has not opened
     */
    public SignedSemiChannel pay(SignedSemiChannel parsed) {
        ChannelAccount account = channels.get(parsed.channelId());
        if (account == null) {
            throw new VoucherException(VoucherException.Reason.WRONG_CHANNEL, "no channel " + parsed.channelId()
                    + " is open on this worker");
        }
        if (account.closedOnChain()) {
            throw new VoucherException(VoucherException.Reason.WRONG_CHANNEL, "channel " + parsed.channelId()
                    + " is closed on chain: no state on it pays anything");
        }
        SignedSemiChannel accepted = account.accept(parsed.boc());
        onPayment.forEach(Runnable::run);
        return accepted;
    }

    /**
     * What this worker has earned over all its runs: the tokens of earlier runs as last saved plus
     * {@code thisRun}'s, and every channel it was ever paid on, the closed ones included.
     */
    public Earnings earnings(WorkerLoad thisRun) {
        return Earnings.of(tokens.total(TokenCounts.of(thisRun)),
                channels.values().stream().map(ChannelAccount::stored).toList());
    }

    /**
     * Saves the lifetime token counts with {@code thisRun}'s in the state directory, when they
     * changed since the last save. Blocking (a file replaced and synced): call it every few
     * seconds and at stop, off the event loop, not per token.
     *
     * @throws java.io.UncheckedIOException when the file cannot be written
     */
    public void saveTokens(WorkerLoad thisRun) {
        tokens.save(TokenCounts.of(thisRun));
    }

    /** What this run metered for gateways that will never be paid: see {@link Unbilled}. */
    public Unbilled unbilled() {
        return unbilled;
    }

    /** For {@code /status}: every channel's latest state and what it still owes. */
    public JsonArray status() {
        JsonArray list = new JsonArray();
        channels.values().forEach(account -> list.add(account.status()));
        return list;
    }

    /**
     * A request from a gateway that opened a channel must name it: the gRPC endpoint checks this
     * before submitting, so a payer cannot drop the id to be served for free.
     */
    private void requireChannel(GenerateRequest request) {
        if (request.getChannelId().isEmpty() && !channels.isEmpty()) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED,
                    "payment_required: this worker is paid over a payment channel, and the request names none");
        }
    }

    @Override
    public Meter meter(GenerateRequest request) {
        if (request.getChannelId().isEmpty()) {
            return Meter.FREE;  // the operator's own HTTP API, or a gateway that pays no one
        }
        ChannelId id;
        try {
            id = ChannelId.fromBytes(request.getChannelId().toByteArray());
        } catch (IllegalArgumentException e) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED, "payment_required: " + e.getMessage());
        }
        ChannelAccount account = channels.get(id);
        if (account == null || account.closeSigned() || account.closedOnChain() || account.quarantined()) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED, "payment_required: "
                    + (account == null ? "no channel " + id + " is open on this worker"
                    : "channel " + id + " is closed or closing, or its close signed: it takes no new requests"));
        }
        String model = request.getModel();
        PriceSchedule schedule = account.price(model.contains("@") ? model.substring(0, model.indexOf('@')) : model);
        if (schedule == null) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED,
                    "payment_required: channel " + id + " carries no price for model '" + model + "'");
        }
        return new ChannelMeter(account, schedule, options.paymentTimeoutMs(), unbilled);
    }

    @Override
    public void onPayment(Runnable wake) {
        onPayment.add(wake);
    }

    @Override
    public long pauseLimitNanos() {
        return TimeUnit.MILLISECONDS.toNanos(options.paymentTimeoutMs());
    }
}
