package org.cocoonjvm.gateway.api;

import io.vertx.core.Vertx;
import io.vertx.grpc.common.MessageSizeOverflowException;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.protocol.grpc.InferenceEvent;
import org.cocoonjvm.protocol.grpc.InferenceGrpcService;
import org.cocoonjvm.protocol.grpc.InferenceRequest;
import org.cocoonjvm.protocol.grpc.ModelsRequest;
import org.cocoonjvm.protocol.grpc.ModelsResponse;
import org.cocoonjvm.protocol.grpc.ServedModel;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.InferenceRequestParser;
import org.cocoonjvm.protocol.openai.ValidRequest;

/**
 * The backend gRPC API, {@code cocoon.v1.Inference}: the same path as {@code POST
 * /v1/chat/completions} (key, validation, {@link Admission}, {@link Relay}) with
 * {@link InferenceSink} in place of the SSE writer. Cancelling the call stops the worker.
 */
public final class InferenceEndpoint {
    private final Admission admission;
    private final Map<String, ApiKey> apiKeys;
    private final ModelCatalog catalog;
    private final long maxRequestBytes;
    private final Vertx vertx;
    private final long messageTimeoutMs;

    /**
     * @param apiKeys          the HTTP API's keys, by digest ({@link BearerKeys#hash})
     * @param maxRequestBytes  larger requests are refused, as HTTP bodies are
     * @param messageTimeoutMs how long a call's request message may take to arrive after its
     *                         headers, as an HTTP body after its head ({@code bodyTimeoutMs}): the
     *                         call's deadline only starts with it, and its connection counts as busy
     */
    public InferenceEndpoint(Admission admission, Map<String, ApiKey> apiKeys, ModelCatalog catalog, long maxRequestBytes,
                             Vertx vertx, long messageTimeoutMs) {
        this.admission = admission;
        this.apiKeys = apiKeys;
        this.catalog = catalog;
        this.maxRequestBytes = maxRequestBytes;
        this.vertx = vertx;
        this.messageTimeoutMs = messageTimeoutMs;
    }

    public void bind(GrpcServer server) {
        server.callHandler(InferenceGrpcService.Generate, this::generate);
        server.callHandler(InferenceGrpcService.Models, this::models);
    }

    private void generate(GrpcServerRequest<InferenceRequest, InferenceEvent> call) {
        long arrivalNanos = System.nanoTime();
        ApiKey key = apiKey(call);
        if (key == null) {
            InferenceSink.failCall(call.response(), BearerKeys.missingOrInvalidMetadata());
            return;
        }
        long deadline = messageDeadline(call);
        // A message over the transport's size limit: say so like any other error, with the limit and trailers.
        call.invalidMessageHandler(invalid -> {
            vertx.cancelTimer(deadline);
            InferenceSink.failCall(call.response(), invalid instanceof MessageSizeOverflowException overflow
                    ? tooLarge(overflow.messageSize()) : ApiException.invalid(null, "The request is not a valid InferenceRequest."));
        });
        call.handler(request -> {
            vertx.cancelTimer(deadline);
            ValidRequest valid;
            try {
                valid = InferenceRequestParser.parse(checkSize(request));
            } catch (ApiException e) {
                InferenceSink.failCall(call.response(), e);
                return;
            }
            // The client may cancel while funds are reserved; remember it until a relay exists to tell.
            AtomicBoolean goneEarly = new AtomicBoolean();
            call.errorHandler(error -> goneEarly.set(true));
            call.exceptionHandler(failure -> goneEarly.set(true));
            call.response().exceptionHandler(failure -> goneEarly.set(true));
            admission.admit(key, valid, arrivalNanos).onComplete(admitted -> {
                if (admitted.failed()) {
                    InferenceSink.failCall(call.response(), (ApiException) admitted.cause());
                    return;
                }
                InferenceSink sink = new InferenceSink(call.response(), admitted.result().id(), request.getClientRequestId());
                Relay relay = admitted.result().relay(sink);
                // A client cancel arrives as a stream reset (errorHandler); a lost connection as an exception.
                call.errorHandler(error -> clientGone(sink, relay));
                call.exceptionHandler(failure -> clientGone(sink, relay));
                call.response().exceptionHandler(failure -> clientGone(sink, relay));
                if (goneEarly.get()) {
                    clientGone(sink, relay);   // cancelled while the reservation was made: release it, run nothing
                    return;
                }
                // The client's deadline ends the relay like the gateway's own: the worker stops, what it
                // produced is billed and the status says DEADLINE_EXCEEDED. Counted from the call's arrival.
                long deadlineMs = call.timeout() - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - arrivalNanos);
                relay.start(call.timeout() > 0 ? Math.max(1, deadlineMs) : Long.MAX_VALUE);
            });
        });
    }

    /**
     * Fails the call unless its request message is whole within {@code messageTimeoutMs}; the
     * message handler cancels the returned timer. A client that leaves first cancels it too (the
     * handlers set here are replaced once the message is in).
     */
    private long messageDeadline(GrpcServerRequest<?, ?> call) {
        long timer = vertx.setTimer(messageTimeoutMs, id -> InferenceSink.failCall(call.response(), new ApiException(
                ErrorKind.REQUEST_TIMEOUT, "The request message did not arrive within " + messageTimeoutMs + " ms of the call's headers.")));
        call.errorHandler(error -> vertx.cancelTimer(timer));
        call.exceptionHandler(failure -> vertx.cancelTimer(timer));
        return timer;
    }

    private static void clientGone(InferenceSink sink, Relay relay) {
        sink.clientGone();
        relay.clientGone();
    }

    private void models(GrpcServerRequest<ModelsRequest, ModelsResponse> call) {
        if (apiKey(call) == null) {
            InferenceSink.failCall(call.response(), BearerKeys.missingOrInvalidMetadata());
            return;
        }
        long deadline = messageDeadline(call);
        call.handler(request -> {
            vertx.cancelTimer(deadline);
            ModelsResponse.Builder response = ModelsResponse.newBuilder();
            for (ModelCatalog.Entry m : catalog.served()) {
                ServedModel.Builder model = ServedModel.newBuilder().setId(m.id()).setHash(m.hash())
                        .setMaxContext(m.maxContext()).setWorkers(m.workers()).setAttestedWorkers(m.attestedWorkers());
                if (m.pricePerToken() >= 0) {
                    model.setPriceNanotonPerToken(m.pricePerToken());
                }
                response.addModels(model);
            }
            call.response().end(response.build());
        });
    }

    /** The caller's key from the {@code authorization} metadata, or null when it has none we know. */
    private ApiKey apiKey(GrpcServerRequest<?, ?> call) {
        String hash = BearerKeys.hashOf(call.headers().get("authorization"));
        return hash == null ? null : apiKeys.get(hash);
    }

    /** The HTTP body limit, for parity; the gRPC transport refuses messages over its own limit before this. */
    private InferenceRequest checkSize(InferenceRequest request) {
        if (request.getSerializedSize() > maxRequestBytes) {
            throw tooLarge(request.getSerializedSize());
        }
        return request;
    }

    private ApiException tooLarge(long size) {
        return new ApiException(ErrorKind.PAYLOAD_TOO_LARGE,
                "The request is " + size + " bytes; the limit is " + maxRequestBytes + ".");
    }
}
