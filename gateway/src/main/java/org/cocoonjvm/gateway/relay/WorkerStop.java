package org.cocoonjvm.gateway.relay;

import org.cocoonjvm.gateway.billing.RequestMeter;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.UsageCost;

/**
 * A relay that ended while its worker was still generating: the Cancel, the worker's events
 * counted until its Final, the wait for that Final (and its shortening by a stopping gateway), and
 * the cut at a client's own deadline, whose client is answered before that Final comes. Apart
 * from {@link Relay} because it outlives the relay's end: it is the relay's only state between its
 * end and its settlement. Its fields are those of the one stop a relay can have, kept here rather
 * than in an object made per stop. Owned by the relay's event loop, as the relay is.
 */
final class WorkerStop {
    /**
     * How long a cancelled worker's final count is waited for. A live worker answers after its
     * current engine step, which a long prefill on a CPU can make seconds long; a dead one's
     * connection is closed by the registry's liveness PINGs within its silence limit, which ends
     * the wait sooner. This bounds only a worker alive and stuck.
     */
    static final long CANCEL_WAIT_MS = 60_000;

    private final Relay relay;
    /** How long a stop that begins waits for the worker's Final: {@link #CANCEL_WAIT_MS}, or less ({@link #waitNoLongerThan}). */
    private long stopWaitMs = CANCEL_WAIT_MS;
    /**
     * The client's own deadline ({@code grpc-timeout}) ended the relay: its answer goes out at once,
     * waiting neither for the worker's Final nor for the ledger (see {@link Relay#cutAtDeadline}).
     */
    private boolean answerAtOnce;

    // The stop, begun by begin() and ended by workerStopped().
    /** A Cancel was sent, and the worker's Final is awaited. */
    private boolean awaiting;
    /** What the settlement reports once the stopped worker's count is known; for a cut, what its client was told. */
    private ApiException error;
    /** The client's status had gone out before the stop. */
    private boolean statusSent;
    /** The wait as the stop began: what a stopping gateway's shorter one is measured against ({@link #shortenWait}). */
    private long waitMs;
    /** The wait's timer ({@link #awaitFinal}). */
    private EventLoopTimers.Timer timer;

    // The cut, begun by cut(): what a client answered at its own deadline was told and billed, and when the answer went out.
    /** The client was answered at its deadline ({@link #cut(ApiException, boolean)}); the worker's Final is awaited in the background. */
    private boolean cut;
    private Usage told;
    /** The completion tokens counted at the cut: the worker's speed is measured up to it. */
    private long cutTokens;
    private UsageCost cutCost;
    /** The answer was handed to the kernel, at {@link #answeredNanos} ({@link RelayTimings#now}). */
    private boolean answered;
    private long answeredNanos;

    WorkerStop(Relay relay) {
        this.relay = relay;
    }

    /** The relay ended with its worker generating: a Cancel was sent, and the worker's Final is awaited. */
    boolean awaiting() {
        return awaiting;
    }

    boolean answerAtOnce() {
        return answerAtOnce;
    }

    /** The client's own deadline ends the relay: it is answered at once (see {@link Relay#cutAtDeadline}). */
    void atDeadline() {
        answerAtOnce = true;
    }

    /** A stop that begins waits no longer than {@code waitMs} for the worker's Final. */
    void waitNoLongerThan(long waitMs) {
        stopWaitMs = Math.min(stopWaitMs, waitMs);
    }

    /** A stop under way waits no longer than {@code waitMs} more, if that is less than it has left. */
    void shortenWait(long waitMs) {
        long left = this.waitMs - relay.timings.sinceCancelMs();
        if (waitMs < left) {
            EventLoopTimers.cancel(timer);
            timer = awaitFinal(waitMs);
        }
    }

    /**
     * Stops the worker's sequence and learns what it was metered: a Cancel, then the stream read
     * on (paused no more, its tokens counted) until the worker's Final, whose usage counts the
     * tokens that were on their way as the Cancel went out. A reset would leave the worker
     * metering a few tokens that the gateway never counts, bills or pays, for every cancelled
     * request. Text that still comes goes to a client that is still there before its error: it is
     * billed. A worker that sends no Final in time ({@link #CANCEL_WAIT_MS}) is reset, and what
     * was counted is billed. The worker's Final, or the lack of one, ends the stop
     * ({@link #workerStopped}).
     */
    void begin(ApiException error, boolean statusSent) {
        awaiting = true;
        this.error = error;
        this.statusSent = statusSent;
        waitMs = stopWaitMs;
        timer = awaitFinal(waitMs);  // first: the resumed stream may hand over the Final within the cancel, which ends the wait
        relay.attempts.sendCancel();
        relay.timings.cancelSent();
        relay.coalescer.resume();
    }

    /**
     * The cut at a client's own deadline: the worker is cancelled as in {@link #begin}, but
     * the client is answered and the request billed now, at the relay's count. The count is frozen
     * for the client: its meter checkpoints no more than it ({@link RequestMeter#billNoMoreThan}),
     * since a payment round's checkpoint is a floor for the settlement, and text that comes after
     * the cut is not sent. The worker's Final, read in the background, settles only what the
     * worker is paid ({@link #cutWorkerStopped}); the relay stays among the running ones until
     * then, so that a stopping gateway's last payment round waits for it.
     */
    void cut(ApiException error, boolean statusSent) {
        Usage usage = relay.counted();
        // Before the cancel: the worker's stream, resumed, may deliver its Final at once.
        cut = true;
        told = usage;
        cutTokens = relay.completionTokens;
        RequestMeter meter = relay.attempts.meter();
        if (meter != null) {
            meter.billNoMoreThan(usage);  // before the worker's later tokens are metered
        }
        begin(error, statusSent);
        cutCost = relay.charge.settle(relay.attempts.worker().id(), meter == null ? null : meter.channelId(), usage).cost();
        relay.permit.release(usage.getPromptTokens() + usage.getCompletionTokens());
        // Text held back for a slow reader goes first: it was counted, so it is billed.
        relay.coalescer.flush();
        relay.settlement.delivered(relay.sink.fail(error, usage, cutCost), () -> {
            answered = true;
            answeredNanos = RelayTimings.now();
            reportCut();
        });
    }

    /** @return the timer that gives up on the worker's Final after {@code waitMs} */
    private EventLoopTimers.Timer awaitFinal(long waitMs) {
        return relay.env.timers().set(waitMs, v -> {
            // Only the full wait says something is wrong with the worker; a short one was chosen
            // (a client's own deadline, a stopping gateway).
            if (waitMs >= CANCEL_WAIT_MS) {
                Relay.log.warn("request {}: worker {} sent no final event within {} ms of the cancel; its call is reset and the {}"
                        + " tokens counted are billed", relay.request.id(), relay.attempts.worker().id(), waitMs, relay.completionTokens);
            }
            workerStopped(null);
        });
    }

    /** The stopped worker's events: counted for the bill until its Final, which ends the stop. */
    void whileStopping(GenerateEvent event) {
        switch (event.getEventCase()) {
            case ACCEPTED -> relay.accepted(event.getAccepted().getPromptTokens());
            case DELTA -> {
                // Counted up to what the request allows: a worker that reads no cancel may stream on for the whole wait.
                long sent = CompletionSink.tokens(event.getDelta());
                long tokens = Math.min(sent, relay.attempts.bound().completionTokens() - relay.completionTokens);
                relay.completionTokens += tokens;
                RequestMeter meter = relay.attempts.meter();
                if (meter != null) {
                    meter.completion(tokens);
                }
                if (!cut) {
                    relay.countLive((int) tokens);  // billed: the worker's Final counts them; after a cut only the worker is paid them
                }
                // Nothing past the bound reaches the client, and the stream is no longer paused:
                // what is held for it stays within one coalesced delta (review Y, Y-3).
                if (!relay.clientGone && !cut && relay.timings.firstTokenSeen() && tokens == sent && relay.coalescer.hasRoom()) {
                    relay.coalescer.pend(event.getDelta());
                }
            }
            case FINAL -> workerStopped(relay.settlement.trusted(event.getFinal()));
            default -> { }
        }
    }

    /** @param fin the stopped worker's Final; null when its stream ended without one, or it fell silent */
    void workerStopped(Final fin) {
        if (!awaiting) {
            return;
        }
        awaiting = false;
        EventLoopTimers.cancel(timer);
        if (fin == null) {
            relay.attempts.cancelCall();
        } else {
            relay.timings.cancelAnswered();
        }
        if (cut) {
            cutWorkerStopped(fin);
            return;
        }
        relay.settlement.settle(null, error, fin != null ? fin.getUsage() : relay.counted(), fin != null, statusSent);
    }

    /** The cut worker's Final came (null: its stream ended without one, or it fell silent): it is paid what it metered. */
    private void cutWorkerStopped(Final fin) {
        RequestMeter meter = relay.attempts.meter();
        if (meter != null) {
            meter.finish(fin != null ? fin.getUsage() : null);  // without a Final, what was counted, as for any cut-short attempt
        }
        RegisteredWorker worker = relay.attempts.worker();
        worker.finished(fin != null ? Integer.toUnsignedLong(fin.getUsage().getCompletionTokens()) : relay.completionTokens);
        relay.settlement.recordSpeed(worker, cutTokens);
        reportCut();
        relay.env.running().remove(relay);
    }

    /** Reports a cut request once its client was answered and its worker stopped; its total time is the client's. */
    private void reportCut() {
        if (answered && !awaiting) {
            relay.settlement.report(null, error, told, cutCost, statusSent, answeredNanos);
        }
    }
}
