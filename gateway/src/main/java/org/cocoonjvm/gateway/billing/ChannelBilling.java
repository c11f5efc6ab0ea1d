package org.cocoonjvm.gateway.billing;

import java.security.SecureRandom;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;
import com.google.protobuf.ByteString;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.ton.ton4j.address.Address;

/**
 * Pays workers: the one owner of every channel's state. Relays meter tokens into a
 * {@link WorkerChannel} lock-free; this verticle sums what each worker is owed (exact fees of
 * finished requests plus the running fees of those in flight) and, every K tokens (rounds at least
 * 5 ms apart) or T ms, runs a payment round over every channel that is owed more than its last
 * state says:
 *
 * <ol>
 *   <li>on this context, snapshot each due channel: its owed amount and, for every request it
 *       covers, the usage so far;</li>
 *   <li>on the ledger's threads, record all of those requests' progress in one transaction
 *       ({@link RequestBilling#checkpoint(Map)}): the client is now billed at least for every token
 *       the round pays for, whatever crashes next;</li>
 *   <li>once that has committed, on a worker thread: sign each channel's next state and record it
 *       in the {@link ChannelJournal} (the journal may be a database);</li>
 *   <li>back on this context, send each state on its worker's session.</li>
 * </ol>
 *
 * Persist before paying: a worker never holds a state covering tokens the ledger does not yet
 * bill. One round is in flight at a time; tokens metered meanwhile wait for the next round, so at
 * K = 1 rounds coalesce by themselves while a commit is in flight. The checkpoint also stores each
 * request's worker fee and channel, so a gateway killed after a checkpoint and before its
 * signature pays it on restart: a channel reopened from the journal owes at least the fees its
 * ledger bills on it ({@link ChannelJournal.Entry#feesBilledNanoton()}).
 *
 * <p>With a {@link ChannelOnChain}, each channel is the official contract on chain: deployed,
 * funded with the deposit cap and OPEN before the worker hears of it, so every state it receives
 * is redeemable. Without one, channels are off-chain only (development and the demo).
 *
 * <p>The opening of a worker's channel (the journal's channel for its key, on chain deployed,
 * funded and OPEN, the terms it is sent, its signed initial state) is {@link ChannelOpening}'s, and
 * a worker's cooperative close of a channel (its drain, one more round, the signature) is
 * {@link ChannelClose}'s, both made at start and called on this context only; a channel's own
 * state changes only through {@link WorkerChannel}'s named transitions. The rounds' own state (in
 * flight, pacing, what waits for them) is {@link PaymentRounds}', the table of channels, their caps
 * and what the admin view and the metrics read of them {@link OpenChannels}', and the chain reads
 * outside an opening or a close {@link OnChainReads}': all owned by this verticle and run on its
 * context, which keeps the public calls and their hops onto that context.
 */
public final class ChannelBilling extends VerticleBase {
    private final PaymentOptions options;
    private final RequestBilling billing;
    private final ChannelJournal journal;
    /** Null: off-chain channels only. */
    private final ChannelOnChain onChain;
    private final SecureRandom random = new SecureRandom();
    private final PaymentStats stats = new PaymentStats();
    /** This context only (but the closed totals, read in {@link #start()}). */
    private final OpenChannels channels;
    /** Read from the journal in {@link #start()}. */
    private volatile PaymentKeyPair key;
    private volatile boolean paying = true;
    /** What the stop waits for: see {@link #stopsAfter}. */
    private volatile Future<?> stopsAfter = Future.succeededFuture();
    /** Made at the top of {@link #start()}, on this context; this context only. */
    private PaymentRounds rounds;
    /** Made with {@link #rounds}; this context only. */
    private OnChainReads chain;
    /** Made in {@link #start()}, on this context, once the key is read; this context only. */
    private ChannelClose close;
    /** Made with {@link #close}; this context only. */
    private ChannelOpening opening;

    /** An open session's channel and the terms to send the worker in Registered. */
    public record Opened(WorkerChannel channel, PaymentChannel terms) {}

    /**
     * @param billing prices and the ledger the rounds checkpoint into
     * @param journal the channels and the payer key; a durable one lets a restarted gateway keep
     *                its channels and continue their seqnos
     */
    public ChannelBilling(PaymentOptions options, RequestBilling billing, ChannelJournal journal) {
        this(options, billing, journal, null);
    }

    /** @param onChain opens each channel on chain first; null keeps channels off chain */
    public ChannelBilling(PaymentOptions options, RequestBilling billing, ChannelJournal journal, ChannelOnChain onChain) {
        this.options = options;
        this.billing = billing;
        this.journal = journal;
        this.onChain = onChain;
        this.channels = new OpenChannels(onChain != null, options.depositCapNanoton(), stats);
    }

    /**
     * Reads the payer key, and every open channel from the journal: each shows (in
     * {@code /admin/workers} and the absent gauges) with its last state and contract from the
     * start, before its worker is back, when it used to show only once that worker registered.
     */
    @Override
    public Future<?> start() {
        rounds = new PaymentRounds(this, context, billing, journal, channels);
        chain = new OnChainReads(context, onChain, channels, stats);
        return context.executeBlocking(() -> {
                    key = journal.payerKey(() -> PaymentKeyPair.generate(random));
                    channels.closedAtStart(journal.closedTotals());
                    return journal.openChannels();
                }, false)
                .onSuccess(open -> {
                    close = new ChannelClose(this, context, journal, onChain, key);
                    opening = new ChannelOpening(this, context, journal, onChain, key, options);
                    open.forEach(entry -> channels.put(entry.channelId(), channelOf(entry)));
                    channels.tally();
                    chain.readDeposits();
                    vertx.setPeriodic(options.everyMs(), id -> rounds.round());
                });
    }

    /**
     * A known channel continues where the journal left it: everything up to its last state is
     * paid, fees the ledger bills beyond it (checkpointed before a crash, not yet signed) are paid
     * by the next round, and new fees go on top.
     */
    WorkerChannel channelOf(ChannelJournal.Entry entry) {
        return new WorkerChannel(this, new ChannelPayer(new ChannelTerms(entry.channelId(), key.publicKey(),
                options.depositCapNanoton()), key, entry.last()), entry.payeeKey(), entry.feesBilledNanoton(),
                entry.contract());
    }

    /**
     * Undeployed beside the gateway's fronts, this verticle would stop its timed rounds at the
     * signal, while relays still end and owe their fees for the whole grace; and sessions closing
     * after its event loop ended could no longer detach. Its stop waits for {@code owner} instead:
     * the relays settled, the {@link #lastRound()} sent, the sessions closed. Call before deploying.
     */
    public void stopsAfter(Future<?> owner) {
        stopsAfter = owner;
    }

    @Override
    public Future<?> stop() {
        return stopsAfter;
    }

    /**
     * One more round, after any in flight: every attached channel is paid what it is owed now.
     * Completes, on this context, once its states are handed to their sessions (a failed round
     * sends none: a gateway restarted on the same ledger and journal pays them when the worker is
     * back).
     */
    public Future<Void> lastRound() {
        Promise<Void> done = Promise.promise();
        context.runOnContext(v -> rounds.roundThen(done::complete));
        return done.future();
    }

    /**
     * Opens (or reopens, for a key seen before) the channel of a worker that said Hello, and
     * attaches {@code session} to it. Refuses ({@link WorkerRefusedException}) a worker without a
     * valid payment key or, on chain, payout address, a second session for a key whose first is
     * still open, a worker whose terms (its payout address) derive another contract than the one
     * its channel is bound to, and a worker whose contract could not be opened on chain.
     * {@code done} runs on the caller's context.
     *
     * @param session sends a message on the worker's session; callable from any thread
     */
    public void open(Hello hello, Consumer<GatewayMessage> session, Handler<AsyncResult<Opened>> done) {
        PaymentPublicKey workerKey;
        Address payout;
        try {
            workerKey = ChannelOpening.paymentKey(hello);
            payout = onChain == null ? null : ChannelOpening.payoutAddress(hello);
        } catch (WorkerRefusedException e) {
            answer(Vertx.currentContext(), done, Future.failedFuture(e));
            return;
        }
        Context caller = Vertx.currentContext();
        context.runOnContext(v -> opening.open(workerKey, payout, hello, session)
                .onComplete(result -> answer(caller, done, result)));
    }

    /**
     * Opens the channel that replaces {@code current}, whose worker asked to close it and goes on
     * serving, and attaches {@code session} to it; {@code current} stays open, and keeps serving,
     * until its close. The journal makes the new channel the worker key's current one first, so a
     * restarted gateway offers it. Fails as {@link #open} does (on chain: the deploy or deposit
     * could not be made); the caller then closes {@code current} without a successor. {@code done}
     * runs on the caller's context.
     */
    public void replace(WorkerChannel current, Hello hello, Consumer<GatewayMessage> session, Handler<AsyncResult<Opened>> done) {
        Context caller = Vertx.currentContext();
        Address payout;
        try {
            payout = onChain == null ? null : ChannelOpening.payoutAddress(hello);
        } catch (WorkerRefusedException e) {
            answer(caller, done, Future.failedFuture(e));
            return;
        }
        context.runOnContext(v -> opening.replace(current, payout, hello, session)
                .onComplete(result -> answer(caller, done, result)));
    }

    /**
     * Whether {@code request} asks to close {@code current}, its session's channel, with a next
     * channel opened first ({@link #replace}): on chain only, where a close takes the channel's
     * deposit away; an off-chain channel is never closed.
     */
    public boolean replaces(WorkerChannel current, CloseRequest request) {
        if (onChain == null || !request.getNextChannel()) {
            return false;
        }
        try {
            return ChannelClose.channelClosedBy(request).equals(current.id());
        } catch (IllegalArgumentException malformed) {
            return false;  // closeRequested says what is wrong with it
        }
    }

    /**
     * This context: the channel an open or replace attaches its session to, {@code entry}'s. A
     * channel read from the journal at start that no worker has attached to since has nothing
     * metered on it: it is made again from this entry, just read, so the fees the ledger bills on
     * it are the latest. One attached before keeps its meters and fees.
     */
    WorkerChannel channelToAttach(ChannelJournal.Entry entry) {
        return channels.toAttach(entry, this::channelOf);
    }

    /**
     * This context: {@code channel}'s contract was found closed on chain without this gateway as
     * its worker attached; it leaves the open channels, and the worker's retry gets a new one.
     */
    void closedWithoutGateway(WorkerChannel channel) {
        recordClosed(channel);
        channels.remove(channel);
        stats.countClosedWithoutGateway();
    }

    /**
     * Worker {@code workerId} reports an uncooperative close running on chain on {@code channel}:
     * no new request is routed to it over that channel, while rounds go on paying what
     * runs on it (the worker's answer to the close holds that). A close started with this
     * gateway's key was not started by this gateway, whose code never does: checked on chain, it
     * is an ERROR, since whoever did it can read the payer key (audit Z, Z-8: the gateway learnt
     * of it only at the worker's next session, if at all).
     */
    public void closingOnChain(WorkerChannel channel, String workerId, boolean startedWithGatewayKey) {
        context.runOnContext(v -> chain.closingOnChain(channel, workerId, startedWithGatewayKey));
    }

    /**
     * Checks and records the worker's signed initial state (seqno 0, sent 0, its own key and this
     * channel); a bad one fails {@code done}, and the caller ends the session.
     */
    public void accepted(WorkerChannel channel, ByteString boc, Handler<AsyncResult<Void>> done) {
        Context caller = Vertx.currentContext();
        SignedSemiChannel state;
        try {
            state = ChannelOpening.initialState(channel, boc);
        } catch (IllegalArgumentException e) {
            answer(caller, done, Future.failedFuture(e));
            return;
        }
        context.runOnContext(v -> opening.accepted(caller, channel, state, done));
    }

    /** A close signed for {@code channel}, to write on the session that asked. */
    public record Signed(WorkerChannel channel, CloseSigned close) {}

    /**
     * The worker asks to close one of its on-chain channels cooperatively, showing a state this
     * gateway signed on it: {@code current}, its session's channel, or one its key had before
     * ({@link #replace}d, or left open by an earlier session). Routing stops sending requests on
     * that channel at once (on {@code current}: to the worker, unless a replacement took its place
     * first); those running on it finish and are paid by the rounds as usual (for at most
     * {@link ChannelClose#CLOSE_DRAIN_LIMIT_NANOS}); then one more round pays what the channel still owes, and
     * the split of the journal's latest state is signed (worker: its sent; gateway: the rest of the
     * deposit). Nothing more is signed on that channel, so the worker's next channel counts from
     * zero against a fresh deposit. Signing at once instead left the running requests' later tokens
     * billed to their clients and never paid, or, with the worker's credit window holding them, cut
     * them (audit G, H2). Called on the session's event loop; {@code session} is the one the
     * request came on: a close whose session ended before it is signed is not signed.
     */
    public void closeRequested(WorkerChannel current, Consumer<GatewayMessage> session, CloseRequest request,
                               Handler<AsyncResult<Signed>> done) {
        ChannelClose.Asked asked = new ChannelClose.Asked(Vertx.currentContext(), session, request, done,
                System.nanoTime() + ChannelClose.CLOSE_DRAIN_LIMIT_NANOS);
        context.runOnContext(v -> close.requested(current, asked));
    }

    /**
     * The session wrote the CloseSigned of {@code channel}: the journal records it closed, so the
     * worker's next session gets a new channel. Recorded only now, not at the signature: a close
     * that never left left the journal without a channel still open on chain (audit K, K-1).
     */
    public void closeDelivered(WorkerChannel channel) {
        context.runOnContext(v -> close.delivered(channel));
    }

    /**
     * This context: {@code channel}'s close reached its worker, and it leaves the open channels;
     * false when it had left already (signed again: recorded the first time).
     */
    boolean closedCooperatively(WorkerChannel channel) {
        if (!channels.remove(channel)) {
            return false;
        }
        // On this context, though the journal may be a database: closes are rare.
        recordClosed(channel);
        stats.countClosedCooperatively();
        return true;
    }

    private void recordClosed(WorkerChannel channel) {
        journal.closed(channel.workerKey(), channel.id());
        channels.closed(channel);
    }

    /** The session ended as {@code channel}'s close was signed, which then never left: the channel stays open. */
    public void closeUndelivered(WorkerChannel channel) {
        context.runOnContext(v -> close.undelivered(channel));
    }

    /**
     * The session ended: each channel it was attached to (its own, one it replaced, one it was
     * closing) keeps its states, and the last is sent again when the worker is back ({@link ChannelOpening#resendLast}).
     */
    public void detach(Consumer<GatewayMessage> session) {
        context.runOnContext(v -> channels.all().forEach(c -> c.detach(session)));
    }

    /**
     * Test switch: stop (false) or resume (true) signing new states, to drive a worker's credit
     * window. Metering goes on either way.
     */
    public void paying(boolean on) {
        paying = on;
        if (on) {
            context.runOnContext(v -> rounds.round());
        }
    }

    /** {@link WorkerChannel#view()}; completes on the caller's context. */
    Future<WorkerChannel.View> view(WorkerChannel channel) {
        return readHere(() -> channel.view(channels.cap(channel)));
    }

    public PaymentStats stats() {
        return stats;
    }

    /**
     * Per worker key, every channel this gateway opened for it, closed ones included, for
     * {@code /admin/workers}; completes on the caller's context.
     */
    public Future<Map<PaymentPublicKey, WorkerLifetime>> lifetimes() {
        return readHere(channels::lifetimes);
    }

    /**
     * The open channels whose worker has no session now (gone, restarting, evicted), for
     * {@code /admin/workers}: what they are owed waits for the worker's return.
     */
    public Future<List<WorkerChannel.View>> absentViews() {
        return readHere(channels::absentViews);
    }

    /**
     * The channels whose close waits for the requests running on them, for {@code /admin/workers}:
     * most often one its worker's next channel replaced, which serves meanwhile.
     */
    public Future<List<WorkerChannel.View>> closingViews() {
        return readHere(channels::closingViews);
    }

    /** The gateway's payment key: party A's key on every channel. */
    public PaymentPublicKey publicKey() {
        return key.publicKey();
    }

    PriceSchedule schedule(String model) {
        return billing.schedule(model);
    }

    int everyTokens() {
        return options.everyTokens();
    }

    /**
     * Asks for a round once per channel until a round takes the channel's tokens: a channel past K
     * stays past K until then, and while a round was in flight every token used to queue a task
     * here, each waking this event loop (3.8% of a 64-stream benchmark's CPU samples at K = 32).
     */
    void payLater(WorkerChannel channel) {
        if (channel.askForRound()) {
            context.runOnContext(v -> rounds.round());
        }
    }

    /** This context, once started: the payment rounds, for the opening and the close to wait for or ask for one. */
    PaymentRounds rounds() {
        return rounds;
    }

    /** Whether new states are signed: see {@link #paying(boolean)}. */
    boolean paying() {
        return paying;
    }

    /** This context: the open channel {@code id}; null when there is none. */
    WorkerChannel channel(ChannelId id) {
        return channels.get(id);
    }

    /** {@link OpenChannels#capped}. */
    long capped(WorkerChannel channel, long owed) {
        return channels.capped(channel, owed);
    }

    /** {@code read}, read on this context; completes on the caller's context. */
    private <T> Future<T> readHere(Supplier<T> read) {
        Context caller = Vertx.currentContext();
        Promise<T> done = Promise.promise();
        context.runOnContext(v -> answer(caller, done::handle, Future.succeededFuture(read.get())));
        return done.future();
    }

    /** Hands {@code result} to {@code done} on the caller's context (or here, for a caller off any context). */
    static <T> void answer(Context caller, Handler<AsyncResult<T>> done, AsyncResult<T> result) {
        if (caller == null) {
            done.handle(result);
        } else {
            caller.runOnContext(x -> done.handle(result));
        }
    }

}
