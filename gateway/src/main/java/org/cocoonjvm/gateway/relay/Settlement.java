package org.cocoonjvm.gateway.relay;

import io.vertx.core.Future;
import java.util.concurrent.CompletionStage;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.RequestMeter;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.UsageCost;

/**
 * A relay's way out once the usage is known: the worker's claimed count judged against what was
 * relayed, the bill settled, the worker paid and released, the client's last events (the usage
 * chunk with its cost, or the error) and the one outcome reported to the access log and metrics.
 * Apart from {@link Relay} because it runs once the relay's events are over, partly on the
 * ledger's and the last write's schedule; what it owns is only that the outcome was reported.
 * Owned by the relay's event loop, as the relay is.
 */
final class Settlement {
    private final Relay relay;
    private boolean reported;

    Settlement(Relay relay) {
        this.relay = relay;
    }

    /**
     * The worker's Final with its usage no more than the relay counted and the request allows
     * ({@link UsageBound}): what is billed and paid. An honest worker's is unchanged; one that
     * claimed more is logged and believed no further, and one that claimed tokens it never sent
     * is counted a failure (a prompt past the bound may be a template longer than announced).
     */
    Final trusted(Final claimed) {
        // A sequence that stops at its end-of-sequence token counts it, and sends no text for it.
        long sent = relay.completionTokens + (claimed.getFinishReason() == FinishReason.FINISH_REASON_STOP ? 1 : 0);
        Usage usage = relay.attempts.bound().trusted(claimed.getUsage(), sent);
        if (usage == claimed.getUsage()) {
            return claimed;
        }
        warnOverClaim(claimed.getUsage(), "billed and paid prompt " + usage.getPromptTokens() + ", completion " + usage.getCompletionTokens());
        if (usage.getCompletionTokens() != claimed.getUsage().getCompletionTokens()) {
            relay.env.registry().failed(relay.attempts.worker());
        }
        return claimed.toBuilder().setUsage(usage).build();
    }

    /** One WARN line for a Final that claimed more than its worker sent or the request allows: its counts, never its text. */
    void warnOverClaim(Usage claimed, String outcome) {
        Relay.log.warn("request {}: worker {} reported usage past what it sent and the request allows (prompt {}, completion {}; "
                + "{} completion tokens relayed); {}", relay.request.id(), relay.attempts.worker().id(), Integer.toUnsignedLong(claimed.getPromptTokens()),
                Integer.toUnsignedLong(claimed.getCompletionTokens()), relay.completionTokens, outcome);
    }

    /**
     * Bills {@code usage}, pays the worker, tells the client (unless it left) and reports.
     *
     * @param fin          the worker's Final when it ended the request by itself; null otherwise
     * @param workerCount  {@code usage} is the worker's own count (from a Final), not the relay's
     */
    void settle(Final fin, ApiException error, Usage usage, boolean workerCount, boolean statusSent) {
        RegisteredWorker worker = relay.attempts.worker();
        RequestMeter meter = relay.attempts.meter();
        RequestBilling.Settling settling = relay.charge.settle(worker == null ? null : worker.id(),
                meter == null ? null : meter.channelId(), usage);
        UsageCost cost = settling.cost();
        if (meter != null) {
            meter.finish(workerCount ? usage : null);
        }
        if (fin != null || error != null) {
            // The usage the client is shown is what the ledger charges: send it once the settlement
            // is committed, or kept for the ledger's return (failed or not: the client is owed its
            // final events either way). Text held back for a slow reader goes first: it is billed.
            // At a client's own deadline the answer cannot wait for the ledger: it goes now, with
            // the cost the settlement just handed to the ledger charges.
            Runnable tell = () -> {
                relay.coalescer.flush();
                delivered(fin != null ? relay.sink.finish(fin, cost) : relay.sink.fail(error, usage, cost),
                        () -> report(fin, error, usage, cost, statusSent));
            };
            if (relay.stop.answerAtOnce()) {
                tell.run();
            } else {
                whenDone(settling.accounted(), tell);
            }
        }
        relay.permit.release(usage.getPromptTokens() + usage.getCompletionTokens());
        if (worker != null) {
            worker.finished(usage.getCompletionTokens());
            if (fin != null) {
                worker.succeeded();
            }
            // Its rate from first to last token, however the request ended (counting finished ones
            // only, a worker whose clients all pressed Stop stayed unmeasured: audit H, H-7).
            recordSpeed(worker, relay.completionTokens);
        }
        if (fin == null && error == null) {
            report(null, null, usage, cost, statusSent);  // the client left: nothing more goes out
        }
        // Last: a stopping gateway's final payment round starts once no relay runs, and must find
        // this one's fee among the finished ones.
        relay.env.running().remove(relay);
    }

    /**
     * The worker's rate over its first {@code tokens} completion tokens, from first to last; not
     * when a slow reader paused the stream, which then timed the reader.
     */
    void recordSpeed(RegisteredWorker worker, long tokens) {
        if (relay.timings.firstTokenSeen() && !relay.coalescer.readerPaused()) {
            worker.recordSpeed(tokens - 1, relay.timings.generatingNanos());
        }
    }

    /**
     * Runs {@code then} once the response's last write went out (handed to the kernel: what its
     * socket buffers still hold, the client has not read yet), so that a request's reported end
     * includes the settlement and a slow reader's catching up. A client that reads none of it for {@code stallTimeoutMs}
     * has stopped reading: its response is dropped, as it would be midway.
     */
    void delivered(Future<Void> lastWrite, Runnable then) {
        EventLoopTimers.Timer timer = lastWrite.isComplete() ? null : relay.env.timers().set(relay.env.options().stallTimeoutMs(), v -> {
            relay.dropStalledClient();
            then.run();  // now: a gRPC call cannot be cancelled once its trailers are queued, so its write may never end
        });
        lastWrite.onComplete(written -> {
            EventLoopTimers.cancel(timer);
            if (written.failed()) {
                relay.lastWriteFailed();
            }
            then.run();
        });
    }

    /** Runs {@code then} on this relay's event loop once {@code stage} is complete (at once if it is). */
    private void whenDone(CompletionStage<?> stage, Runnable then) {
        if (stage.toCompletableFuture().isDone()) {
            then.run();
        } else {
            stage.whenComplete((ignored, failure) -> relay.context.runOnContext(v -> then.run()));
        }
    }

    private void report(Final fin, ApiException error, Usage usage, UsageCost cost, boolean statusSent) {
        report(fin, error, usage, cost, statusSent, RelayTimings.now());
    }

    /** @param endNanos when the request ended for its client ({@link RelayTimings#now}) */
    void report(Final fin, ApiException error, Usage usage, UsageCost cost, boolean statusSent, long endNanos) {
        if (reported) {
            return;
        }
        reported = true;
        Relay.Request request = relay.request;
        RelayTimings timings = relay.timings;
        // A client that stopped reading did not leave: the gateway dropped it, as its client_stalled says.
        int status = statusSent ? 200 : relay.clientGone && !relay.stalled ? RequestOutcome.CLIENT_CLOSED_REQUEST
                : error == null ? 200 : error.kind().httpStatus;
        String finish = fin == null ? null : switch (fin.getFinishReason()) {
            case FINISH_REASON_LENGTH -> "length";
            case FINISH_REASON_STOP -> "stop";
            default -> fin.getFinishReason().name();
        };
        relay.env.observer().finished(new RequestOutcome(request.id(), request.keyId(), request.path(), request.route().model(),
                request.route().tier(), request.stream(), relay.attempts.lastWorkerId(), relay.attempts.triedCount(), status,
                error != null ? (error.kind().code == null ? error.kind().type : error.kind().code) : relay.stalled ? Relay.STALLED : null,
                finish, usage.getPromptTokens(), usage.getCompletionTokens(), cost == null ? 0 : cost.totalCost(), timings.queueNanos(),
                timings.timeToFirstTokenNanos(), timings.overheadNanos(), timings.totalNanos(endNanos), relay.clientGone,
                timings.cancelNanos(), relay.liveTokens, relay.charge.takeCountedProgress()));
        relay.env.running().reported(relay);
    }
}
