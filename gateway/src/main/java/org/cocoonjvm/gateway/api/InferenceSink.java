package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.grpc.server.GrpcServerResponse;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Done;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.InferenceEvent;
import org.cocoonjvm.protocol.grpc.InferenceRequest;
import org.cocoonjvm.protocol.grpc.InferenceUsage;
import org.cocoonjvm.protocol.grpc.TextDelta;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ErrorTrailers;
import org.cocoonjvm.protocol.openai.UsageCost;

/**
 * Writes one completion to an {@code Inference.Generate} call: a {@code TextDelta} per delta,
 * then {@code Done} with usage and cost and status OK; or an error status, whether or not deltas
 * went out before it. Owned by the call's event loop.
 */
final class InferenceSink implements CompletionSink {
    /** Response header with the gateway's id for the call, as in its access log. */
    static final String REQUEST_ID_HEADER = "cocoon-request-id";
    /** On a failure after the worker took the request: what it produced, and what that cost (nanoTON). */
    static final String PROMPT_TOKENS_TRAILER = "cocoon-prompt-tokens";
    static final String COMPLETION_TOKENS_TRAILER = "cocoon-completion-tokens";
    static final String TOTAL_COST_TRAILER = "cocoon-total-cost-nanoton";

    private final GrpcServerResponse<InferenceRequest, InferenceEvent> response;
    private final String requestId;
    private final String clientRequestId;
    /** Tokens of deltas that carried no text (held back by stop matching), sent with the next text. */
    private int unsentTokens;
    private boolean ended;
    private static final Future<Void> ALREADY_ENDED = Future.failedFuture("the call had already ended");

    InferenceSink(GrpcServerResponse<InferenceRequest, InferenceEvent> response, String requestId, String clientRequestId) {
        this.response = response;
        this.requestId = requestId;
        this.clientRequestId = clientRequestId;
        response.headers().set(REQUEST_ID_HEADER, requestId);
    }

    /**
     * Ends a call with the error's status and trailers; also for failures before there is a sink.
     * The status message is among the trailers (see {@link ErrorTrailers#write}).
     */
    static Future<Void> failCall(GrpcServerResponse<?, ?> response, ApiException error) {
        ErrorTrailers.write(response.trailers(), error);
        return response.status(error.kind().grpcStatus).end();
    }

    /**
     * Sends the response headers, with {@link #REQUEST_ID_HEADER}, before any message: the call
     * was admitted and has its id. The status still comes in the trailers, whatever it is.
     */
    void sendHeaders() {
        if (!ended) {
            response.writeHead();
        }
    }

    /** The client cancelled the call: write nothing more. */
    void clientGone() {
        ended = true;
    }

    @Override
    public void delta(Delta delta) {
        if (ended) {
            return;
        }
        // The relay passes on no delta past the request's bound: the sum fits an int.
        int tokens = (int) (unsentTokens + CompletionSink.tokens(delta));
        if (delta.getText().isEmpty()) {
            unsentTokens = tokens;
            return;
        }
        unsentTokens = 0;
        TextDelta text = TextDelta.newBuilder().setText(delta.getText()).setTokens(tokens).build();
        response.write(InferenceEvent.newBuilder().setDelta(text).build());
    }

    @Override
    public Future<Void> finish(Final fin, UsageCost cost) {
        if (ended) {
            return ALREADY_ENDED;
        }
        ApiException failure = CompletionSink.failureOf(fin);
        if (failure != null) {
            return fail(failure, fin.getUsage(), cost);
        }
        ended = true;
        Done done = Done.newBuilder()
                .setUsage(usage(fin.getUsage(), cost == null ? new UsageCost(0, 0, 0) : cost))
                // As in the HTTP API, a sequence the worker cancelled itself ended normally.
                .setFinishReason(fin.getFinishReason() == FinishReason.FINISH_REASON_LENGTH
                        ? FinishReason.FINISH_REASON_LENGTH : FinishReason.FINISH_REASON_STOP)
                .setRequestId(requestId)
                .setClientRequestId(clientRequestId)
                .build();
        return response.end(InferenceEvent.newBuilder().setDone(done).build());
    }

    private static InferenceUsage usage(Usage usage, UsageCost cost) {
        return InferenceUsage.newBuilder()
                .setPromptTokens(usage.getPromptTokens())
                .setCompletionTokens(usage.getCompletionTokens())
                .setTotalTokens(usage.getPromptTokens() + usage.getCompletionTokens())
                .setCachedTokens(usage.getCachedTokens())
                .setReasoningTokens(usage.getReasoningTokens())
                .setPromptTotalCost(cost.promptTotalCost())
                .setCompletionTotalCost(cost.completionTotalCost())
                .setTotalCost(cost.totalCost())
                .build();
    }

    @Override
    public void keepAlive() {
        // HTTP/2 keeps the call alive; there is no status to commit early.
    }

    /**
     * Once a worker took the request (it reported the prompt), the usage so far goes in trailers
     * too: it is billed. A call past its deadline always gets them, zeros when it used nothing (its
     * deadline came before a worker took it): its client, which set the deadline, is told what it
     * was charged either way.
     */
    @Override
    public Future<Void> fail(ApiException error, Usage usage, UsageCost cost) {
        if (ended) {
            return ALREADY_ENDED;
        }
        ended = true;
        if (usage != null && (usage.getPromptTokens() != 0 || usage.getCompletionTokens() != 0
                || error.kind() == ErrorKind.TIMEOUT)) {
            MultiMap trailers = response.trailers();
            trailers.set(PROMPT_TOKENS_TRAILER, Integer.toUnsignedString(usage.getPromptTokens()));
            trailers.set(COMPLETION_TOKENS_TRAILER, Integer.toUnsignedString(usage.getCompletionTokens()));
            trailers.set(TOTAL_COST_TRAILER, Long.toString(cost == null ? 0 : cost.totalCost()));
        }
        return failCall(response, error);
    }

    @Override
    public void abandon() {
        ended = true;
        response.cancel();
    }

    /**
     * Always false: a gRPC status travels in the trailers, so even after deltas went out a
     * failure still ends the call with its own status.
     */
    @Override
    public boolean committed() {
        return false;
    }

    @Override
    public boolean ended() {
        return ended;
    }

    @Override
    public boolean writeQueueFull() {
        return !ended && response.writeQueueFull();
    }

    @Override
    public void drainHandler(Handler<Void> handler) {
        response.drainHandler(handler);
    }
}
