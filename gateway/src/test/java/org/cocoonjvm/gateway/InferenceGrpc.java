package org.cocoonjvm.gateway;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.client.InvalidStatusException;
import io.vertx.grpc.common.GrpcStatus;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.InferenceEvent;
import org.cocoonjvm.protocol.grpc.InferenceGrpcClient;
import org.cocoonjvm.protocol.grpc.InferenceRequest;
import org.cocoonjvm.protocol.openai.ErrorTrailers;

/** A client of the gateway's {@code Inference} service, as a backend would hold one. */
final class InferenceGrpc {
    private final TestNetwork net;
    private final GrpcClient client;
    private final SocketAddress gateway;

    InferenceGrpc(TestNetwork net) {
        this(net, new GrpcClientOptions());
    }

    /** @param options e.g. a client that enforces its calls' deadlines itself, as gRPC's own clients do */
    InferenceGrpc(TestNetwork net, GrpcClientOptions options) {
        this.net = net;
        this.client = GrpcClient.client(net.vertx, options);
        this.gateway = SocketAddress.inetSocketAddress(net.gateway.port(), "127.0.0.1");
    }

    /** One {@code Generate} call as it unfolds: events as they arrive, then how it ended. */
    static final class Call {
        final List<InferenceEvent> events = new CopyOnWriteArrayList<>();
        /** System.nanoTime() at each event's arrival, by index. */
        final List<Long> arrivedNanos = new CopyOnWriteArrayList<>();
        final CompletableFuture<Call> ended = new CompletableFuture<>();
        volatile GrpcClientRequest<InferenceRequest, InferenceEvent> request;
        volatile MultiMap headers;
        /** System.nanoTime() when the call was sent, when its response headers came, and when it ended. */
        volatile long sentNanos;
        volatile long headersNanos;
        volatile long endedNanos;
        volatile MultiMap trailers;
        volatile GrpcStatus status;
        volatile String statusMessage;

        /** Trailer metadata; a call that fails before any message sends its trailers as headers. */
        String metadata(String name) {
            String value = trailers == null ? null : trailers.get(name);
            return value != null || headers == null ? value : headers.get(name);
        }

        List<InferenceEvent> deltas() {
            return events.stream().filter(InferenceEvent::hasDelta).toList();
        }
    }

    /**
     * Starts a call; {@code key} null sends no authorization. Everything is wired on the event loop
     * before the request goes out, so not even a response that ends at once can slip past.
     */
    Call generate(String key, InferenceRequest message) {
        return generate(key, message, 0);
    }

    /**
     * @param deadlineMs sent as the call's {@code grpc-timeout} (enforced by the client only when its
     *                   options say so); 0 sends none
     */
    Call generate(String key, InferenceRequest message, long deadlineMs) {
        return generate(key, message, deadlineMs, null);
    }

    /** @param grpcTimeout the call's {@code grpc-timeout} header as sent, e.g. "0m"; null for none */
    Call call(String key, InferenceRequest message, String grpcTimeout) {
        return TestNetwork.await(Future.fromCompletionStage(generate(key, message, 0, grpcTimeout).ended));
    }

    private Call generate(String key, InferenceRequest message, long deadlineMs, String grpcTimeout) {
        Call call = new Call();
        // Opened on the network's client context, as its HTTP calls (see TestNetwork.onClientContext).
        net.onClientContext(() -> client.request(gateway, InferenceGrpcClient.Generate).onComplete(opened -> {
            if (opened.failed()) {
                call.ended.completeExceptionally(opened.cause());
                return;
            }
            GrpcClientRequest<InferenceRequest, InferenceEvent> request = opened.result();
            call.request = request;
            if (key != null) {
                request.headers().set("authorization", "Bearer " + key);
            }
            if (deadlineMs > 0) {
                request.timeout(deadlineMs, java.util.concurrent.TimeUnit.MILLISECONDS);
            }
            if (grpcTimeout != null) {
                request.headers().set("grpc-timeout", grpcTimeout);
            }
            request.response().onComplete(answered -> {
                call.headersNanos = System.nanoTime();
                if (answered.failed()) {
                    call.ended.completeExceptionally(answered.cause());
                    return;
                }
                GrpcClientResponse<InferenceRequest, InferenceEvent> response = answered.result();
                call.headers = response.headers();
                response.handler(event -> {
                    call.arrivedNanos.add(System.nanoTime());
                    call.events.add(event);
                });
                // end() fails for any status but OK; a status is still how the call ended.
                response.end().onComplete(ended -> {
                    call.endedNanos = System.nanoTime();
                    if (ended.failed() && !(ended.cause() instanceof InvalidStatusException)) {
                        call.ended.completeExceptionally(ended.cause());
                        return;
                    }
                    call.trailers = response.trailers();
                    call.status = response.status();
                    call.statusMessage = ErrorTrailers.message(response);  // as gRPC's own clients read it
                    call.ended.complete(call);
                });
            });
            call.sentNanos = System.nanoTime();
            request.end(message);
        }));
        return call;
    }

    /** Runs a call to its end. */
    Call call(String key, InferenceRequest message) {
        return TestNetwork.await(Future.fromCompletionStage(generate(key, message).ended));
    }

    GrpcClient client() {
        return client;
    }

    SocketAddress gateway() {
        return gateway;
    }

    static InferenceRequest.Builder chat(String model) {
        return InferenceRequest.newBuilder().setModel(model).setChat(ChatMessages.newBuilder()
                .addMessages(ChatMessage.newBuilder().setRole("user").setContent("tell me about cocoon")));
    }
}
