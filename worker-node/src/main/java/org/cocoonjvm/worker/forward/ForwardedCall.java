package org.cocoonjvm.worker.forward;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.SseParser;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.OutputMailbox;

/**
 * One generation {@link OpenAiForwarder} forwards: the upstream's SSE read into token deltas, the
 * stream held while its channel is behind on payment, timed for idleness, cut at the announced
 * context, and ended with the Final that bills it. Its callbacks run on {@link #context}, the
 * upstream request's; apart from the forwarder because this is the state of one stream, and the
 * forwarder's is that of all of them (admission, counts, the stop).
 */
final class ForwardedCall {
    private static final int MAX_EVENT_BYTES = 1 << 20;

    private final OpenAiForwarder forwarder;
    private final Vertx vertx;
    private final String requestId;
    private final OutputMailbox output;
    private final CreditGate.Meter meter;
    /**
     * The most completion tokens forwarded: the context this worker announces for a request
     * without max_tokens; unbounded for one with them, which the upstream keeps to.
     */
    private final int maxCompletion;
    /** Set by the forwarder once the upstream request is made. */
    volatile HttpClientRequest request;
    /** Reset on purpose (client gone, payment overdue): what the upstream does next is no failure of its own. */
    private volatile boolean cancelled;
    /** Set before the response arrives; everything below is touched on it only. */
    volatile Context context;
    private HttpClientResponse response;
    /** The upstream is paused until a payment brings the channel under its window. */
    private boolean held;
    private long overdueTimer;
    private long idleTimer;
    /** When the upstream last sent a byte, or the stream was last held: a held stream is not idle. */
    private long lastActiveNanos;
    /** The upstream's latest usage; null until it reports one. */
    private Usage usage;
    /** Completion tokens the deltas carried so far. */
    private int forwarded;
    private boolean deltaSent;
    private boolean announced;
    private FinishReason reason = FinishReason.FINISH_REASON_UNSPECIFIED;
    private boolean ended;

    ForwardedCall(OpenAiForwarder forwarder, String requestId, OutputMailbox output, CreditGate.Meter meter,
                  int maxCompletion) {
        this.forwarder = forwarder;
        this.vertx = forwarder.vertx;
        this.requestId = requestId;
        this.output = output;
        this.meter = meter;
        this.maxCompletion = maxCompletion;
    }

    void stream(HttpClientResponse response) {
        this.response = response;
        SseParser parser = new SseParser(MAX_EVENT_BYTES, this::onEvent);
        lastActiveNanos = System.nanoTime();
        idleTimer = vertx.setTimer(forwarder.options.idleTimeoutMs(), t -> checkIdle());
        response.handler(buffer -> {
            if (ended) {
                return;  // what the upstream sent after the Final: the Final's usage is the bill
            }
            lastActiveNanos = System.nanoTime();
            try {
                parser.handle(buffer);
            } catch (RuntimeException e) {
                // The parser's message may quote the event, and so the completion: the log gets none of it.
                upstreamFailed("bad stream from the upstream server: " + e.getMessage(), "an unreadable event");
                cancel();
            }
            holdIfOverdrawn();
        });
        response.exceptionHandler(e -> upstreamFailed("the upstream stream broke: " + e.getMessage()));
        response.endHandler(v -> {
            if (reason == FinishReason.FINISH_REASON_UNSPECIFIED) {
                upstreamFailed("the upstream stream ended without a finish_reason");
            } else {
                end(reason, null);
            }
        });
        // A channel already over its window (other requests' tokens) reads nothing until paid.
        holdIfOverdrawn();
        if (!held) {
            response.resume();
        }
    }

    /**
     * Stops reading the upstream while the channel owes more than the window, so it generates
     * no further than what is buffered; past the gate's limit the request fails, as a paused
     * sequence does in the scheduler.
     */
    private void holdIfOverdrawn() {
        if (held || ended || !meter.paused()) {
            return;
        }
        held = true;
        response.pause();
        forwarder.waitingForPayment.add(this);
        overdueTimer = vertx.setTimer(Math.max(1, TimeUnit.NANOSECONDS.toMillis(forwarder.credit.pauseLimitNanos())), t -> {
            end(FinishReason.FINISH_REASON_ERROR, meter.overdue());
            cancel();
        });
    }

    /**
     * Fails the stream once the upstream has sent nothing for the idle timeout; timed one
     * timer at a time, from the last byte, rather than a timer per chunk.
     */
    private void checkIdle() {
        if (ended) {
            return;
        }
        long now = System.nanoTime();
        if (held) {
            lastActiveNanos = now;
        }
        long idleMs = TimeUnit.NANOSECONDS.toMillis(now - lastActiveNanos);
        if (idleMs < forwarder.options.idleTimeoutMs()) {
            idleTimer = vertx.setTimer(forwarder.options.idleTimeoutMs() - idleMs, t -> checkIdle());
            return;
        }
        upstreamFailed("the upstream server sent nothing for " + idleMs / 1000.0 + " s");
        cancel();
    }

    /** After a payment: reads on if it brought the channel under its window. */
    void resumeIfPaid() {
        if (held && !meter.paused()) {
            release();
            response.resume();
        }
    }

    private void release() {
        held = false;
        forwarder.waitingForPayment.remove(this);
        vertx.cancelTimer(overdueTimer);
    }

    private void onEvent(String data) {
        if (ended || data.equals("[DONE]")) {
            return;  // ended: the events after it in the same read are the upstream's, not the client's
        }
        JsonObject chunk = new JsonObject(data);
        if (chunk.containsKey("error")) {
            // Its message may quote the prompt; its type and code may not.
            JsonObject error = chunk.getValue("error") instanceof JsonObject e ? e : new JsonObject();
            upstreamFailed("the upstream server failed: " + chunk.getValue("error"), "an error event (type "
                    + error.getValue("type") + ", code " + error.getValue("code") + ")");
            return;
        }
        Usage counted = UpstreamJson.counts(chunk);
        if (counted != null) {
            // Its latest size replaces the earlier one here too; a failure that bills nobody for
            // the prompt (end) leaves it counted, since the upstream did process it.
            forwarder.promptTokens.addAndGet(counted.getPromptTokens() - (usage == null ? 0 : usage.getPromptTokens()));
            usage = counted;
            meter.prompt(usage.getPromptTokens());  // the size last reported replaces the one before
            if (!announced && !deltaSent) {
                announced = true;
                output.accepted(usage.getPromptTokens());
            }
        }
        JsonArray choices = chunk.getJsonArray("choices");
        JsonObject choice = choices == null || choices.isEmpty() ? null : choices.getJsonObject(0);
        String text = UpstreamJson.text(choice);
        int advanced = counted != null ? Math.max(0, usage.getCompletionTokens() - forwarded) : text.isEmpty() ? 0 : 1;
        int room = maxCompletion - forwarded;
        if (advanced > room || room == 0 && !text.isEmpty()) {
            // The gateway holds and bounds a request without max_tokens by the context its
            // workers announce, and cuts off one that streams past it mid-reply, unpaid for
            // the rest (review Y, Y-4); an upstream serving a longer context than the model
            // file's (rope scaling) would. The forward ends at "length" there instead, and the
            // upstream's generation is reset. Not sent as the upstream's max_tokens: vLLM and
            // SGLang refuse a prompt plus max_tokens past their own context (a --max-model-len
            // often below the model file's), and only the upstream counts the prompt's tokens.
            if (room > 0) {
                forward(room, text);
            }
            end(FinishReason.FINISH_REASON_LENGTH, null);
            cancel();
            return;
        }
        if (advanced > 0 || !text.isEmpty()) {
            forward(advanced, text);
        }
        String finish = choice == null ? null : choice.getString("finish_reason");
        if (finish != null) {
            reason = finish.equals("length") ? FinishReason.FINISH_REASON_LENGTH : FinishReason.FINISH_REASON_STOP;
        }
    }

    private void forward(int tokens, String text) {
        forwarded += tokens;
        forwarder.tokensGenerated.addAndGet(tokens);
        meter.completion(tokens);
        deltaSent = true;
        output.tokens(tokens, text);
    }

    private void upstreamFailed(String error) {
        upstreamFailed(error, error);
    }

    /** @param logged what the log says: {@code error} less anything that may quote the request or its completion */
    private void upstreamFailed(String error, String logged) {
        if (!ended && !cancelled) {
            forwarder.logFailure(requestId, logged);
        }
        // A reset of ours breaks the stream too: then the caller stopped it, and nothing failed.
        end(cancelled ? FinishReason.FINISH_REASON_CANCELLED : FinishReason.FINISH_REASON_ERROR, error);
    }

    private void end(FinishReason finish, String error) {
        if (ended) {
            return;
        }
        ended = true;
        vertx.cancelTimer(idleTimer);
        if (held) {
            release();
        }
        if (finish == FinishReason.FINISH_REASON_ERROR && forwarded == 0 && usage != null) {
            // As a native sequence: a failure before any output costs nobody its prompt.
            meter.prompt(0);
            usage = Usage.getDefaultInstance();
        }
        meter.ended();
        // The completion count is what was metered: a chunk without usage counted as a token may
        // leave the upstream's last report below it.
        Final.Builder fin = Final.newBuilder().setFinishReason(finish)
                .setUsage((usage != null ? usage.toBuilder() : Usage.newBuilder()).setCompletionTokens(forwarded));
        if (finish == FinishReason.FINISH_REASON_ERROR) {
            fin.setError(forwarder.graceOver ? Generator.STOPPED_BEFORE_THE_END : error).setWorkerStopping(forwarder.graceOver);
        }
        output.finish(fin.build(), meter);
        forwarder.finished();
    }

    /** The caller stopped the generation: the upstream is reset, and the Final says what was metered until then. */
    void stop() {
        cancel();
        context.runOnContext(v -> end(FinishReason.FINISH_REASON_CANCELLED, null));
    }

    void cancel() {
        cancelled = true;
        HttpClientRequest r = request;
        if (r != null) {
            r.reset();
        }
    }
}
