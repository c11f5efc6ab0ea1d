package org.cocoonjvm.gateway;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.common.GrpcStatus;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.InferenceEvent;
import org.cocoonjvm.protocol.grpc.InferenceGrpcClient;
import org.cocoonjvm.protocol.grpc.InferenceRequest;

/** A client of the gateway's {@code Inference} service, as a backend would hold one. */
final class InferenceGrpc {
    private final GrpcClient client;
    private final SocketAddress gateway;

    InferenceGrpc(TestNetwork net) {
        this.client = GrpcClient.client(net.vertx);
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

    /** Starts a call; {@code key} null sends no authorization. */
    Call generate(String key, InferenceRequest message) {
        Call call = new Call();
        Future<?> started = client.request(gateway, InferenceGrpcClient.Generate).compose(request -> {
            call.request = request;
            if (key != null) {
                request.headers().set("authorization", "Bearer " + key);
            }
            request.end(message);
            return request.response();
        }).onSuccess(response -> {
            call.headers = response.headers();
            response.handler(event -> {
                call.arrivedNanos.add(System.nanoTime());
                call.events.add(event);
            });
            response.endHandler(v -> {
                call.trailers = response.trailers();
                call.status = response.status();
                call.statusMessage = response.statusMessage();
                call.ended.complete(call);
            });
            response.exceptionHandler(call.ended::completeExceptionally);
        });
        started.onFailure(call.ended::completeExceptionally);
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
