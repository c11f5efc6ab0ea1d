package org.cocoonjvm.gateway.api;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Parser;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.grpc.common.GrpcHeaderNames;
import io.vertx.grpc.common.GrpcMessage;
import io.vertx.grpc.common.MessageSizeOverflowException;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.zip.GZIPInputStream;
import org.cocoonjvm.gateway.relay.EventLoopTimers;
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
 *
 * <p>Request messages are decoded here, not by Vert.x: its gzip decoding inflates a message whole,
 * on the event loop, before any size check, so 1 MB on the wire could become gigabytes. Here a
 * compressed message is inflated only up to the request limit.
 */
public final class InferenceEndpoint {
    private static final String GENERATE = "/" + InferenceGrpcService.Generate.fullMethodName();
    private static final String MODELS = "/" + InferenceGrpcService.Models.fullMethodName();
    /**
     * What a call naming no {@code grpc-encoding} is given in its place. Vert.x's deframer throws
     * out of the connection's handler on a message flagged compressed when none is named (the call
     * then hangs until its message timeout); with a name, the message reaches {@link #decode}.
     */
    private static final String UNNAMED_ENCODING = "(none)";

    /** Calls answered without a relay (refusals, and {@code Models}), for the access log and metrics. */
    public interface Answered {
        /**
         * @param requestId the call's id, as its {@code cocoon-request-id} said
         * @param error      null for a call answered OK
         * @param clientGone the client cancelled the call before its answer: it had none
         */
        void answered(String requestId, String path, ApiKey key, String model, ApiException error, long totalNanos,
                      boolean clientGone);
    }

    private final Admission admission;
    private final ApiKeys apiKeys;
    private final ModelCatalog catalog;
    private final long maxRequestBytes;
    private final long messageTimeoutMs;
    private final Answered answered;

    /**
     * @param apiKeys          the HTTP API's keys
     * @param maxRequestBytes  larger requests, once decompressed, are refused, as HTTP bodies are
     * @param messageTimeoutMs how long a call's request message may take to arrive after its
     *                         headers, as an HTTP body after its head ({@code bodyTimeoutMs}): the
     *                         call's deadline only starts with it, and its connection counts as busy
     */
    public InferenceEndpoint(Admission admission, ApiKeys apiKeys, ModelCatalog catalog, long maxRequestBytes,
                             long messageTimeoutMs, Answered answered) {
        this.admission = admission;
        this.apiKeys = apiKeys;
        this.catalog = catalog;
        this.maxRequestBytes = maxRequestBytes;
        this.messageTimeoutMs = messageTimeoutMs;
        this.answered = answered;
    }

    /** To run on every gRPC request before Vert.x reads its body: see {@link #UNNAMED_ENCODING}. */
    public static void nameUnnamedEncoding(HttpServerRequest request) {
        if (!request.headers().contains(GrpcHeaderNames.GRPC_ENCODING)) {
            request.headers().set(GrpcHeaderNames.GRPC_ENCODING, UNNAMED_ENCODING);
        }
    }

    public void bind(GrpcServer server) {
        server.callHandler(InferenceGrpcService.Generate, this::generate);
        server.callHandler(InferenceGrpcService.Models, this::models);
    }

    private void generate(GrpcServerRequest<InferenceRequest, InferenceEvent> call) {
        long arrivalNanos = System.nanoTime();
        ApiKey key = apiKey(call);
        if (key == null) {
            refuse(call, GENERATE, null, null, BearerKeys.missingOrInvalidMetadata(), arrivalNanos);
            return;
        }
        if (call.timeout() == 0 && call.headers().contains("grpc-timeout")) {
            refuse(call, GENERATE, key, null, new ApiException(ErrorKind.TIMEOUT, "The call's deadline (grpc-timeout) had passed "
                    + "when it arrived."), arrivalNanos);
            return;
        }
        onRequest(call, GENERATE, key, arrivalNanos, InferenceRequest.parser(), request -> {
            ValidRequest valid;
            try {
                valid = InferenceRequestParser.parse(request);
            } catch (ApiException e) {
                // proto3 sends no model as "": then the call named none.
                refuse(call, GENERATE, key, request.getModel().isEmpty() ? null : request.getModel(), e, arrivalNanos);
                return;
            }
            // The client may cancel while funds are reserved; remember it until a relay exists to tell.
            AtomicBoolean goneEarly = new AtomicBoolean();
            call.errorHandler(error -> goneEarly.set(true));
            call.exceptionHandler(failure -> goneEarly.set(true));
            call.response().exceptionHandler(failure -> goneEarly.set(true));
            admission.admit(key, valid, GENERATE, arrivalNanos).onComplete(admitted -> {
                if (admitted.failed()) {
                    refuse(call, GENERATE, key, request.getModel(), (ApiException) admitted.cause(), arrivalNanos, goneEarly.get());
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
                // The headers, with cocoon-request-id, go out now: a call may wait for a worker a long
                // time before its first delta, and one that ends before it (its deadline, a failure)
                // is billed all the same, so its client must have the id to look it up by. A gRPC
                // status travels in the trailers: early headers commit to nothing.
                sink.sendHeaders();
                // The client's deadline ends the relay like the gateway's own: the worker stops, what it
                // produced is billed and the status says DEADLINE_EXCEEDED. Counted from the call's
                // arrival, less a margin: gRPC's clients end the call themselves at the deadline, and
                // the gateway's answer, with what the call cost, must reach them first (audit L, 7; N, N-2).
                long deadlineMs = call.timeout() - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - arrivalNanos);
                relay.start(call.timeout() > 0 ? Math.max(1, deadlineMs - answerMarginMs(call.timeout())) : Long.MAX_VALUE);
            });
        });
    }

    /**
     * Hands the call's one request message, decoded, to {@code then}; refuses a call whose message
     * is not whole within {@code messageTimeoutMs}, is larger than the limit once decompressed, does
     * not parse, or never comes (the client ended its side without one). A unary call's further
     * messages are ignored. A client that leaves first cancels the deadline (the handlers set here
     * are replaced once the message is in).
     */
    private <T> void onRequest(GrpcServerRequest<?, ?> call, String path, ApiKey key, long arrivalNanos, Parser<T> parser,
                               Handler<T> then) {
        // One answer per call: whichever of these comes first gives it, and the others find it taken.
        AtomicBoolean taken = new AtomicBoolean();
        EventLoopTimers.Timer timer = admission.timers().set(messageTimeoutMs, v -> {
            if (!taken.getAndSet(true)) {
                refuse(call, path, key, null, new ApiException(ErrorKind.REQUEST_TIMEOUT, "The request message did not arrive "
                        + "within " + messageTimeoutMs + " ms of the call's headers."), arrivalNanos);
            }
        });
        call.errorHandler(error -> timer.cancel());
        call.exceptionHandler(failure -> timer.cancel());
        // A message over the transport's size limit (as sent): said like any other error, with the limit.
        call.invalidMessageHandler(invalid -> {
            if (taken.getAndSet(true)) {
                return;
            }
            timer.cancel();
            refuse(call, path, key, null, invalid instanceof MessageSizeOverflowException overflow
                    ? tooLarge(overflow.messageSize(), "") : ApiException.invalid(null, "The request message is not valid."), arrivalNanos);
        });
        call.messageHandler(message -> {
            if (taken.getAndSet(true)) {
                return;
            }
            timer.cancel();
            T request;
            try {
                request = decode(message, parser);
            } catch (ApiException e) {
                refuse(call, path, key, null, e, arrivalNanos);
                return;
            }
            then.handle(request);
        });
        call.endHandler(v -> {
            if (!taken.getAndSet(true)) {
                timer.cancel();
                refuse(call, path, key, null, ApiException.invalid(null, "The call ended without its request message."), arrivalNanos);
            }
        });
    }

    /**
     * A request message as sent (identity) or gzip-compressed, never larger than the request
     * limit: a compressed one is inflated only that far.
     */
    private <T> T decode(GrpcMessage message, Parser<T> parser) {
        Buffer payload = message.payload();
        byte[] bytes;
        switch (message.encoding()) {
            case "identity" -> {
                if (payload.length() > maxRequestBytes) {
                    throw tooLarge(payload.length(), "");
                }
                bytes = payload.getBytes();
            }
            case "gzip" -> bytes = inflate(payload.getBytes());
            case UNNAMED_ENCODING -> throw ApiException.invalid(null, "The request message is flagged compressed, "
                    + "but the call names no grpc-encoding.");
            default -> throw new ApiException(ErrorKind.UNSUPPORTED_ENCODING, "The request message's grpc-encoding "
                    + ApiException.shown(message.encoding()) + " is not supported; use identity or gzip.");
        }
        try {
            return parser.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
            throw ApiException.invalid(null, "The request message does not parse: " + e.getMessage());
        }
    }

    private byte[] inflate(byte[] compressed) {
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(compressed))) {
            byte[] bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxRequestBytes + 1));
            if (bytes.length > maxRequestBytes) {
                throw tooLarge(bytes.length, " or more once decompressed");
            }
            return bytes;
        } catch (IOException e) {
            throw ApiException.invalid(null, "The request message is not valid gzip: " + e.getMessage());
        }
    }

    private void refuse(GrpcServerRequest<?, ?> call, String path, ApiKey key, String model, ApiException error, long arrivalNanos) {
        refuse(call, path, key, model, error, arrivalNanos, false);
    }

    /** @param clientGone the client cancelled before the refusal (while it was admitted): it gets none */
    private void refuse(GrpcServerRequest<?, ?> call, String path, ApiKey key, String model, ApiException error, long arrivalNanos,
                        boolean clientGone) {
        String id = RequestIds.answered();
        call.response().headers().set(InferenceSink.REQUEST_ID_HEADER, id);
        InferenceSink.failCall(call.response(), error);
        answered.answered(id, path, key, model, error, System.nanoTime() - arrivalNanos, clientGone);
    }

    private static void clientGone(InferenceSink sink, Relay relay) {
        sink.clientGone();
        relay.clientGone();
    }

    private void models(GrpcServerRequest<ModelsRequest, ModelsResponse> call) {
        long arrivalNanos = System.nanoTime();
        ApiKey key = apiKey(call);
        if (key == null) {
            refuse(call, MODELS, null, null, BearerKeys.missingOrInvalidMetadata(), arrivalNanos);
            return;
        }
        onRequest(call, MODELS, key, arrivalNanos, ModelsRequest.parser(), request -> {
            ModelsResponse.Builder response = ModelsResponse.newBuilder();
            for (ModelCatalog.Entry m : catalog.listed()) {
                ServedModel.Builder model = ServedModel.newBuilder().setId(m.id()).setHash(m.hash())
                        .setMaxContext(m.maxContext()).setCreated(m.created())
                        .setWorkers(m.workers()).setAttestedWorkers(m.attestedWorkers());
                if (m.pricePerToken() >= 0) {
                    model.setPriceNanotonPerToken(m.pricePerToken()).setReservedNanotonPerToken(m.reservedPerToken().doubleValue());
                }
                response.addModels(model);
            }
            String id = RequestIds.answered();
            call.response().headers().set(InferenceSink.REQUEST_ID_HEADER, id);
            call.response().end(response.build());
            answered.answered(id, MODELS, key, null, null, System.nanoTime() - arrivalNanos, false);
        });
    }

    /** The caller's key from the {@code authorization} metadata, or null when it has none we know. */
    private ApiKey apiKey(GrpcServerRequest<?, ?> call) {
        return apiKeys.find(BearerKeys.hashOf(call.headers()));
    }

    private ApiException tooLarge(long size, String decompressed) {
        return new ApiException(ErrorKind.PAYLOAD_TOO_LARGE,
                "The request is " + size + " bytes" + decompressed + "; the limit is " + maxRequestBytes + ".");
    }

    /**
     * How long before a client's deadline the gateway ends its call. The answer no longer waits for
     * the worker's Final or the ledger (the relay's cut), but it still waits for a busy event loop,
     * and must cross the network and the client's own scheduling before the client's timer fires:
     * a twentieth of the deadline (at most 250 ms) came 0.1 to 0.8 s late with tens of concurrent
     * calls on a loaded host (audit N, N-2). A tenth of the deadline, at least
     * {@value #MIN_ANSWER_MARGIN_MS} ms and at most {@value #MAX_ANSWER_MARGIN_MS} ms, and never
     * more than half of it (a 300 ms deadline is cut at 150 ms).
     */
    public static long answerMarginMs(long timeoutMs) {
        long margin = Math.min(MAX_ANSWER_MARGIN_MS, Math.max(MIN_ANSWER_MARGIN_MS, timeoutMs / 10));
        return Math.min(margin, timeoutMs / 2);
    }

    public static final long MIN_ANSWER_MARGIN_MS = 250;
    public static final long MAX_ANSWER_MARGIN_MS = 1_000;
}
