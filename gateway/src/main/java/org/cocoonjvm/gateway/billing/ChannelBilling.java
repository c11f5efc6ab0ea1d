package org.cocoonjvm.gateway.billing;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Predicate;
import com.google.protobuf.ByteString;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import org.cocoonjvm.billing.chain.QuarantinedState;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
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
 * state changes only through {@link WorkerChannel}'s named transitions.
 */
public final class ChannelBilling extends VerticleBase {
    private static final Logger log = LoggerFactory.getLogger(ChannelBilling.class);
    /**
     * Rounds start at least this far apart. K counts a channel's tokens across all its streams: at
     * 64 streams of 1,000 tokens/s, K = 32 asked for 2,000 signed states a second, each verified by
     * the worker too: a quarter to two fifths more CPU per token for the whole process than payments
     * off, and with the gap the gateway's event loops spend 0.81–0.92× of what they did per token
     * (docs/benchmarks.md). A worker owed 5 ms more of tokens risks nothing its credit window does
     * not already cover.
     */
    static final long MIN_ROUND_GAP_NANOS = TimeUnit.MILLISECONDS.toNanos(5);
    private static final long MOST_FAILING_ROUND_GAP_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final PaymentOptions options;
    private final RequestBilling billing;
    private final ChannelJournal journal;
    /** Null: off-chain channels only. */
    private final ChannelOnChain onChain;
    private final SecureRandom random = new SecureRandom();
    /** This context only. */
    private final Map<ChannelId, WorkerChannel> channels = new HashMap<>();
    /** Per worker key, the channels the journal records closed: read in {@link #start()}, then this context only. */
    private final Map<PaymentPublicKey, ChannelJournal.ClosedTotals> closedTotals = new HashMap<>();
    /** Read from the journal in {@link #start()}. */
    private volatile PaymentKeyPair key;
    /** This context only: a round's checkpoint, signing or journaling is under way. */
    private boolean roundInFlight;
    /** This context only: something became due while a round was in flight. */
    private boolean roundWanted;
    /**
     * This context only: when the next round may start ({@link System#nanoTime}), the gap widening
     * up to {@link #MOST_FAILING_ROUND_GAP_NANOS} while rounds fail; and whether a timer waits out the gap.
     */
    private final RoundPacer pacer = new RoundPacer(System::nanoTime, MIN_ROUND_GAP_NANOS, MOST_FAILING_ROUND_GAP_NANOS);
    private boolean gapTimerSet;
    /** This context only: close requests that waited for the round in flight. */
    private final List<Runnable> afterRound = new ArrayList<>();
    private volatile boolean paying = true;
    /** What the stop waits for: see {@link #stopsAfter}. */
    private volatile Future<?> stopsAfter = Future.succeededFuture();
    private final Stats stats = new Stats();
    /** Made in {@link #start()}, on this context, once the key is read; this context only. */
    private ChannelClose close;
    /** Made with {@link #close}; this context only. */
    private ChannelOpening opening;

    /**
     * What {@code /metrics} shows of the rounds and the money owed, read from any thread. The
     * absent workers' unpaid sum is taken at every round (each period at least): an attached
     * worker's unpaid money is the next round's, an absent one's waits for it to come back.
     */
    public static final class Stats {
        private final AtomicLong roundsPaid = new AtomicLong();
        private final AtomicLong roundsFailed = new AtomicLong();
        private final AtomicLong unpaidAbsent = new AtomicLong();
        private final AtomicLong absentChannels = new AtomicLong();
        private final AtomicLong openedOnChain = new AtomicLong();
        private final AtomicLong closedCooperatively = new AtomicLong();
        private final AtomicLong closedWithoutGateway = new AtomicLong();
        private final AtomicLong closesStartedOutside = new AtomicLong();
        private final AtomicLong depositsNanoton = new AtomicLong();
        private volatile Consumer<String> openRefused = reason -> { };

        public long roundsPaid() {
            return roundsPaid.get();
        }

        public long roundsFailed() {
            return roundsFailed.get();
        }

        public long unpaidAbsentNanoton() {
            return unpaidAbsent.get();
        }

        /** Open channels whose worker has no session. */
        public long absentChannels() {
            return absentChannels.get();
        }

        /** New channels whose contract was deployed, funded and opened on chain. */
        public long openedOnChain() {
            return openedOnChain.get();
        }

        /** Cooperative closes signed (the worker sends each on chain). */
        public long closedCooperatively() {
            return closedCooperatively.get();
        }

        /**
         * Uncooperative closes started on chain with this gateway's payer key, which its own code
         * never does: reported by their workers, confirmed on chain. Any is worth an alert.
         */
        public long closesStartedOutside() {
            return closesStartedOutside.get();
        }

        /** Channels found closed on chain without this gateway (the worker's uncooperative close). */
        public long closedWithoutGateway() {
            return closedWithoutGateway.get();
        }

        /**
         * The deposit cap of each open on-chain channel known to be funded: opened since start, or
         * holding signed states. Taken at every round, like the absent figures; no chain call.
         */
        public long depositsNanoton() {
            return depositsNanoton.get();
        }

        /** {@code count} is called with the reason code of each channel that could not be opened on chain. */
        public void onOpenRefused(Consumer<String> count) {
            openRefused = count;
        }

        void countOpenRefused(String code) {
            openRefused.accept(code);
        }

        void countOpenedOnChain() {
            openedOnChain.incrementAndGet();
        }
    }

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
    }

    /**
     * Reads the payer key, and every open channel from the journal: each shows (in
     * {@code /admin/workers} and the absent gauges) with its last state and contract from the
     * start, before its worker is back, when it used to show only once that worker registered.
     */
    @Override
    public Future<?> start() {
        return context.executeBlocking(() -> {
                    key = journal.payerKey(() -> PaymentKeyPair.generate(random));
                    closedTotals.putAll(journal.closedTotals());
                    return journal.openChannels();
                }, false)
                .onSuccess(open -> {
                    close = new ChannelClose(this, context, journal, onChain, key);
                    opening = new ChannelOpening(this, context, journal, onChain, key, options);
                    open.forEach(entry -> channels.put(entry.channelId(), channelOf(entry)));
                    tally();
                    readDeposits();
                    vertx.setPeriodic(options.everyMs(), id -> round());
                });
    }

    /**
     * The deposits of the on-chain channels read from the journal, one after another off this
     * context: until its worker is back, such a channel showed, and counted in the deposits gauge,
     * the cap set now, which an earlier setting may not have funded (review AA, AA-7). One the
     * chain does not answer for keeps that estimate until its worker's session reads it.
     */
    private void readDeposits() {
        // Only channels holding states: one bound whose open failed before its deploy has no contract to read.
        List<WorkerChannel> unread = channels.values().stream()
                .filter(c -> c.contractAddress() != null && c.signed().seqno() > 0 && c.deposit().isEmpty()).toList();
        if (onChain == null || unread.isEmpty()) {
            return;
        }
        context.executeBlocking(() -> {
            Map<WorkerChannel, Long> read = new HashMap<>();
            int failed = 0;
            for (WorkerChannel c : unread) {
                try {
                    onChain.depositIfOpen(c.contractAddress()).ifPresent(deposit -> read.put(c, deposit));
                } catch (RuntimeException e) {
                    failed++;
                }
            }
            if (failed > 0) {
                log.warn("could not read the deposit of {} of the {} on-chain channels in the journal: they show the cap set"
                        + " now until their workers are back", failed, unread.size());
            }
            return read;
        }, false).onSuccess(read -> {
            read.forEach((c, deposit) -> {
                if (c.deposit().isEmpty()) {
                    c.depositRead(deposit);
                }
            });
            tally();
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
        context.runOnContext(v -> roundThen(done::complete));
        return done.future();
    }

    private void roundThen(Runnable then) {
        if (roundInFlight) {
            afterRound.add(() -> roundThen(then));  // it took only the tokens metered before it began
            return;
        }
        if (!paying) {
            then.run();
            return;
        }
        afterRound.add(then);
        round();
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
        return channels.compute(entry.channelId(),
                (id, known) -> known == null || known.workerId() == null ? channelOf(entry) : known);
    }

    /**
     * This context: {@code channel}'s contract was found closed on chain without this gateway as
     * its worker attached; it leaves the open channels, and the worker's retry gets a new one.
     */
    void closedWithoutGateway(WorkerChannel channel) {
        recordClosed(channel);
        channels.remove(channel.id(), channel);
        stats.closedWithoutGateway.incrementAndGet();
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
        context.runOnContext(v -> {
            if (!channel.closingOnChain(startedWithGatewayKey ? "gateway_key" : "worker")) {
                return;  // reported already: one chain read, line and count per close (review AA, AA-3)
            }
            log.warn("worker {} reports an uncooperative close running on chain on channel {}, started {}: no new request is"
                            + " routed to it over that channel; its next session gets a new one", workerId, channel.id(),
                    startedWithGatewayKey ? "with this gateway's payer key" : "by the worker");
            if (!startedWithGatewayKey || onChain == null || channel.contractAddress() == null) {
                return;
            }
            context.executeBlocking(() -> onChain.closeUnderWay(channel.contractAddress()), false).onComplete(read -> {
                if (read.failed()) {
                    log.warn("could not read the close on channel {} at {}", channel.id(), channel.contractAddress(),
                            read.cause());
                } else if (read.result().filter(QuarantinedState::submittedByA).isPresent()) {
                    QuarantinedState close = read.result().get();
                    stats.closesStartedOutside.incrementAndGet();
                    log.error("channel {} at {}: an uncooperative close was started on chain with this gateway's payer key,"
                                    + " not by this gateway, with a state of seqno {} sending {} nanoTON (the latest this"
                                    + " gateway signed: seqno {}, {} nanoTON). Whoever did it can read the payer key where"
                                    + " this gateway keeps it (its ledger's channel journal): check who can", channel.id(),
                            channel.contractAddress(), close.seqnoA(), close.sentA(), channel.signed().seqno(),
                            channel.signed().sentNanoton());
                }
            });
        });
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
        if (!channels.remove(channel.id(), channel)) {
            return false;
        }
        // On this context, though the journal may be a database: closes are rare.
        recordClosed(channel);
        stats.closedCooperatively.incrementAndGet();
        return true;
    }

    private void recordClosed(WorkerChannel channel) {
        journal.closed(channel.workerKey(), channel.id());
        closedTotals.put(channel.workerKey(), closedTotals.getOrDefault(channel.workerKey(), ChannelJournal.ClosedTotals.NONE)
                .plus(channel.payer().last().sentNanoton()));
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
        context.runOnContext(v -> channels.values().forEach(c -> c.detach(session)));
    }

    /**
     * Test switch: stop (false) or resume (true) signing new states, to drive a worker's credit
     * window. Metering goes on either way.
     */
    public void paying(boolean on) {
        paying = on;
        if (on) {
            context.runOnContext(v -> round());
        }
    }

    /** {@link WorkerChannel#view()}; completes on the caller's context. */
    Future<WorkerChannel.View> view(WorkerChannel channel) {
        Context caller = Vertx.currentContext();
        Promise<WorkerChannel.View> view = Promise.promise();
        context.runOnContext(v -> answer(caller, view::handle, Future.succeededFuture(channel.view(cap(channel)))));
        return view.future();
    }

    public Stats stats() {
        return stats;
    }

    /**
     * Per worker key, every channel this gateway opened for it, closed ones included, for
     * {@code /admin/workers}; completes on the caller's context.
     */
    public Future<Map<PaymentPublicKey, WorkerLifetime>> lifetimes() {
        Context caller = Vertx.currentContext();
        Promise<Map<PaymentPublicKey, WorkerLifetime>> lifetimes = Promise.promise();
        context.runOnContext(v -> {
            Map<PaymentPublicKey, WorkerLifetime> all = new HashMap<>();
            closedTotals.forEach((workerKey, closed) -> all.put(workerKey, WorkerLifetime.closed(closed)));
            channels.values().forEach(c -> all.put(c.workerKey(), all.getOrDefault(c.workerKey(), WorkerLifetime.NONE)
                    .plusOpen(c.signed().sentNanoton())));
            answer(caller, lifetimes::handle, Future.succeededFuture(all));
        });
        return lifetimes.future();
    }

    /**
     * The open channels whose worker has no session now (gone, restarting, evicted), for
     * {@code /admin/workers}: what they are owed waits for the worker's return.
     */
    public Future<List<WorkerChannel.View>> absentViews() {
        return views(this::isAbsent);
    }

    /**
     * The channels whose close waits for the requests running on them, for {@code /admin/workers}:
     * most often one its worker's next channel replaced, which serves meanwhile.
     */
    public Future<List<WorkerChannel.View>> closingViews() {
        return views(c -> c.closing() && c.attached() && !c.closed());
    }

    private Future<List<WorkerChannel.View>> views(Predicate<WorkerChannel> which) {
        Context caller = Vertx.currentContext();
        Promise<List<WorkerChannel.View>> views = Promise.promise();
        context.runOnContext(v -> answer(caller, views::handle, Future.succeededFuture(channels.values().stream()
                .filter(which).map(c -> c.view(cap(c))).toList())));
        return views.future();
    }

    /**
     * No session, not closed, and something to wait for: on chain, a channel that never opened
     * (its open refused, e.g. for an empty wallet) holds no deposit and owes nothing, and listing
     * it as absent sent operators looking for money that was never there (audit K, K-9).
     */
    private boolean isAbsent(WorkerChannel c) {
        return !c.attached() && !c.closed()
                && (onChain == null || c.onChain() != null || c.signed().seqno() > 0 || c.durableFees() > 0);
    }

    /**
     * This context: the absent workers' unpaid sum and count, after a round. Only theirs: an
     * attached channel's view reads every meter in flight, and rounds come every few milliseconds
     * under load.
     */
    private void tally() {
        long absent = 0;
        long absentCount = 0;
        long deposits = 0;
        for (WorkerChannel c : channels.values()) {
            if (c.closed()) {
                continue;
            }
            if (isAbsent(c)) {
                absent += c.view(cap(c)).unpaidNanoton();
                absentCount++;
            }
            // A state is sent only once its contract is open, so a channel holding one was funded;
            // one bound without a state may have failed its open before the deploy.
            if (c.onChain() != null || c.contractAddress() != null && c.signed().seqno() > 0) {
                deposits += cap(c);
            }
        }
        stats.unpaidAbsent.set(absent);
        stats.absentChannels.set(absentCount);
        stats.depositsNanoton.set(deposits);
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
            context.runOnContext(v -> round());
        }
    }

    /**
     * Starts a payment round (see the class comment), or asks for one after the round in flight or
     * once {@link #MIN_ROUND_GAP_NANOS} has passed. Channels stay marked as asking meanwhile, so
     * relays do not wake this loop again for them.
     */
    void round() {
        if (roundInFlight) {
            roundWanted = true;
            return;
        }
        roundWanted = false;
        if (!paying) {
            return;
        }
        long wait = pacer.waitNanos();
        if (wait > 0) {
            roundAfter(wait);
            return;
        }
        Map<RequestBilling.Charge, RequestBilling.Metered> progress = new HashMap<>();
        List<WorkerChannel.Due> due = collectDue(progress);
        if (due.isEmpty()) {
            tally();
            runAfterRound();  // a close that asked for this round finds nothing more to pay
            return;
        }
        roundInFlight = true;
        pacer.started();
        Future.fromCompletionStage(billing.checkpoint(progress), context)
                .compose(v -> context.executeBlocking(() -> signAndJournal(due), false))
                .onComplete(signed -> {
                    roundInFlight = false;
                    if (signed.failed()) {
                        roundFailed(due, signed.cause());
                    } else {
                        roundPaid(due, signed.result());
                    }
                    tally();
                    runAfterRound();
                    if (roundWanted) {
                        round();
                    }
                });
    }

    /** Asks for a round once {@code waitNanos} have passed, unless a timer already waits out the gap. */
    private void roundAfter(long waitNanos) {
        if (!gapTimerSet) {
            gapTimerSet = true;
            vertx.setTimer(Math.max(1, TimeUnit.NANOSECONDS.toMillis(waitNanos + 999_999)), id -> {
                gapTimerSet = false;
                round();
            });
        }
    }

    /** What each attached, open channel is owed now, its meters' progress added to {@code progress}. */
    private List<WorkerChannel.Due> collectDue(Map<RequestBilling.Charge, RequestBilling.Metered> progress) {
        List<WorkerChannel.Due> due = new ArrayList<>();
        for (WorkerChannel channel : channels.values()) {
            channel.roundTakes();  // before due() reads the tokens: any metered later ask again
            WorkerChannel.Due d = !channel.attached() || channel.closed() ? null : channel.due(progress);
            if (d != null) {
                due.add(d);
            }
        }
        return due;
    }

    /** Nothing was sent; the next round (the periodic timer's at the latest) covers it all again. */
    private void roundFailed(List<WorkerChannel.Due> due, Throwable cause) {
        if (pacer.failed()) {
            log.warn("payment round over {} channels failed, nothing sent; trying again with a widening gap, "
                    + "logged again when a round works: {}", due.size(), cause.toString());
        }
        due.forEach(d -> d.channel().roundFailed(cause));
        stats.roundsFailed.incrementAndGet();
    }

    /** The round's states are signed and journaled: each channel's meters are paid, and its state goes out. */
    private void roundPaid(List<WorkerChannel.Due> due, List<Sent> signed) {
        if (pacer.failing()) {
            log.info("payment rounds work again after {} failed in {} ms", pacer.failedRounds(), pacer.failingMillis());
            pacer.succeeded();
        }
        due.forEach(WorkerChannel.Due::paid);
        for (Sent sent : signed) {
            sent.channel().sent(sent.state());
            sent.channel().send(sent.state());
        }
        stats.roundsPaid.incrementAndGet();
    }

    /** This context: whether a round's checkpoint, signing or journaling is under way. */
    boolean roundInFlight() {
        return roundInFlight;
    }

    /** Whether new states are signed: see {@link #paying(boolean)}. */
    boolean paying() {
        return paying;
    }

    /** This context: {@code then} runs once the round in flight ends, or the next {@link #round()} finds nothing due. */
    void afterRound(Runnable then) {
        afterRound.add(then);
    }

    /** This context: the open channel {@code id}; null when there is none. */
    WorkerChannel channel(ChannelId id) {
        return channels.get(id);
    }

    private void runAfterRound() {
        List<Runnable> waiting = new ArrayList<>(afterRound);
        afterRound.clear();
        waiting.forEach(Runnable::run);
    }

    /**
     * The round's states, each recorded in the journal before it is returned for sending. Runs on a
     * worker thread, while this context starts no other round: the payers are not shared meanwhile.
     */
    private List<Sent> signAndJournal(List<WorkerChannel.Due> due) {
        List<Sent> states = new ArrayList<>(due.size());
        for (WorkerChannel.Due d : due) {
            SignedSemiChannel state = d.channel().payer().pay(d.owedNanoton());
            journal.signed(state);
            states.add(new Sent(d.channel(), state));
        }
        return states;
    }

    private record Sent(WorkerChannel channel, SignedSemiChannel state) {}

    /**
     * The most {@code channel} pays: on chain its contract's deposit, whatever the cap set now (a
     * channel funded under another setting holds what it held); the cap set now off chain, and for
     * an on-chain channel whose contract this process has not read yet (a view's estimate).
     */
    long cap(WorkerChannel channel) {
        return channel.deposit().orElse(options.depositCapNanoton());
    }

    /**
     * What a channel may pay of {@code owed}; logs once per channel when its fees go past its cap.
     * An on-chain channel pays nothing past its last state until its contract is read: its deposit
     * may be less than the cap set now.
     */
    long capped(WorkerChannel channel, long owed) {
        if (onChain != null && channel.deposit().isEmpty()) {
            return Math.min(owed, channel.signed().sentNanoton());
        }
        long cap = cap(channel);
        if (channel.firstPastCap(owed, cap)) {
            log.error("channel {} owes {} nanoTON, above its cap of {}: the worker is paid up to the cap only; "
                    + "close and reopen the channel", channel.id(), owed, cap);
        }
        return Math.min(owed, cap);
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
