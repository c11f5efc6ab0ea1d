package org.cocoonjvm.gateway.billing;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import io.vertx.core.Context;
import io.vertx.core.Future;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link ChannelBilling}'s payment rounds (the steps are in its class comment): whether one is in
 * flight or wanted after it, their pacing ({@link RoundPacer} and its gap timer), and what waits
 * for the round in flight to end ({@link #afterRound}). Apart from the verticle so that this state
 * has one owner and the round reads top to bottom in one place.
 *
 * <p>One owner, one thread: ChannelBilling makes it at its start and calls it on its context only;
 * a round's checkpoint runs on the ledger's threads and its signing on a worker thread, both
 * completing back here, while no other round starts.
 */
final class PaymentRounds {
    /** ChannelBilling's logger: these lines were its own, and operators' log filters name it. */
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

    private final ChannelBilling billing;
    private final Context context;
    /** The ledger each round checkpoints into. */
    private final RequestBilling ledger;
    private final ChannelJournal journal;
    private final OpenChannels channels;
    /** A round's checkpoint, signing or journaling is under way. */
    private boolean roundInFlight;
    /** Something became due while a round was in flight. */
    private boolean roundWanted;
    /**
     * When the next round may start ({@link System#nanoTime}), the gap widening up to
     * {@link #MOST_FAILING_ROUND_GAP_NANOS} while rounds fail; and whether a timer waits out the gap.
     */
    private final RoundPacer pacer = new RoundPacer(System::nanoTime, MIN_ROUND_GAP_NANOS, MOST_FAILING_ROUND_GAP_NANOS);
    private boolean gapTimerSet;
    /** Close requests (and a last round) that waited for the round in flight. */
    private final List<Runnable> afterRound = new ArrayList<>();

    PaymentRounds(ChannelBilling billing, Context context, RequestBilling ledger, ChannelJournal journal,
                  OpenChannels channels) {
        this.billing = billing;
        this.context = context;
        this.ledger = ledger;
        this.journal = journal;
        this.channels = channels;
    }

    /**
     * Starts a payment round (see ChannelBilling's class comment), or asks for one after the round
     * in flight or once {@link #MIN_ROUND_GAP_NANOS} has passed. Channels stay marked as asking
     * meanwhile, so relays do not wake this loop again for them.
     */
    void round() {
        if (roundInFlight) {
            roundWanted = true;
            return;
        }
        roundWanted = false;
        if (!billing.paying()) {
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
            channels.tally();
            runAfterRound();  // a close that asked for this round finds nothing more to pay
            return;
        }
        roundInFlight = true;
        pacer.started();
        Future.fromCompletionStage(ledger.checkpoint(progress), context)
                .compose(v -> context.executeBlocking(() -> signAndJournal(due), false))
                .onComplete(signed -> {
                    roundInFlight = false;
                    if (signed.failed()) {
                        roundFailed(due, signed.cause());
                    } else {
                        roundPaid(due, signed.result());
                    }
                    channels.tally();
                    runAfterRound();
                    if (roundWanted) {
                        round();
                    }
                });
    }

    /** {@link ChannelBilling#lastRound()}: {@code then} runs once one more round, after any in flight, has ended. */
    void roundThen(Runnable then) {
        if (roundInFlight) {
            afterRound.add(() -> roundThen(then));  // it took only the tokens metered before it began
            return;
        }
        if (!billing.paying()) {
            then.run();
            return;
        }
        afterRound.add(then);
        round();
    }

    /** Asks for a round once {@code waitNanos} have passed, unless a timer already waits out the gap. */
    private void roundAfter(long waitNanos) {
        if (!gapTimerSet) {
            gapTimerSet = true;
            context.owner().setTimer(Math.max(1, TimeUnit.NANOSECONDS.toMillis(waitNanos + 999_999)), id -> {
                gapTimerSet = false;
                round();
            });
        }
    }

    /** What each attached, open channel is owed now, its meters' progress added to {@code progress}. */
    private List<WorkerChannel.Due> collectDue(Map<RequestBilling.Charge, RequestBilling.Metered> progress) {
        List<WorkerChannel.Due> due = new ArrayList<>();
        for (WorkerChannel channel : channels.all()) {
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
        billing.stats().countRoundFailed();
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
        billing.stats().countRoundPaid();
    }

    /** Whether a round's checkpoint, signing or journaling is under way. */
    boolean roundInFlight() {
        return roundInFlight;
    }

    /** {@code then} runs once the round in flight ends, or the next {@link #round()} finds nothing due. */
    void afterRound(Runnable then) {
        afterRound.add(then);
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
}
