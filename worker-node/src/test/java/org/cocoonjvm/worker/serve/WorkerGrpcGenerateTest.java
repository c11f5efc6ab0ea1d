package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.net.URI;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.protocol.grpc.Cancel;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateCall;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerGrpcClient;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.worker.ClientChains;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@code Worker.Generate}'s contract, over a real gRPC client against a real {@link WorkerNode} on loopback. */
class WorkerGrpcGenerateTest {
    private static final GenerateCall START = GenerateCall.newBuilder().setStart(GenerateRequest.newBuilder()
            .setRequestId("r1").setModel(SyntheticEngine.MODEL_NAME)
            .setChat(ChatMessages.newBuilder().addMessages(ChatMessage.newBuilder().setRole("user").setContent("hello")))).build();
    private static final GenerateCall CANCEL = GenerateCall.newBuilder().setCancel(Cancel.getDefaultInstance()).build();

    private Vertx vertx;
    private GrpcClient grpc;
    private SocketAddress worker;

    @BeforeEach
    void deployWorker() {
        vertx = Vertx.vertx();
        // 100 tokens/s: a reply (24 tokens or more) streams for a quarter of a second at least.
        WorkerNode node = new WorkerNode(new SyntheticEngine(100, 4, 2048),
                new WorkerOptions("worker-test", "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 1000));
        await(vertx.deployVerticle(node));
        worker = SocketAddress.inetSocketAddress(URI.create(node.endpoint()).getPort(), "127.0.0.1");
        grpc = GrpcClient.client(vertx);
    }

    @AfterEach
    void undeploy() {
        await(vertx.close());
    }

    @Test
    void aCancel_stopsTheSequence_andItsFinalCountsEveryTokenSent() throws Exception {
        Call call = open();
        call.request.write(START);
        call.firstDeltas.get(5, TimeUnit.SECONDS);
        call.request.end(CANCEL);

        Final fin = call.fin.get(5, TimeUnit.SECONDS);
        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_CANCELLED);
        assertThat(fin.getUsage().getPromptTokens()).isPositive();
        long streamed = call.events.stream().filter(GenerateEvent::hasDelta).mapToLong(e -> CompletionSink.tokens(e.getDelta())).sum();
        assertThat(fin.getUsage().getCompletionTokens()).isEqualTo(streamed).isGreaterThanOrEqualTo(2);
        assertThat(call.status.get(5, TimeUnit.SECONDS)).isEqualTo(GrpcStatus.OK);
    }

    /** A server-streaming caller: the start, then its half-close at once. */
    @Test
    void aStartAndAHalfClose_isServedToTheEnd() throws Exception {
        Call call = open();
        call.request.end(START);

        assertThat(call.fin.get(5, TimeUnit.SECONDS).getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
        assertThat(call.status.get(5, TimeUnit.SECONDS)).isEqualTo(GrpcStatus.OK);
    }

    @Test
    void callsThatBreakTheContract_areInvalidArguments() throws Exception {
        for (List<GenerateCall> messages : List.of(List.of(CANCEL), List.of(GenerateCall.getDefaultInstance()), List.<GenerateCall>of(),
                List.of(START, START))) {
            Call call = open();
            messages.forEach(call.request::write);
            call.request.end();
            assertThat(call.status.get(5, TimeUnit.SECONDS)).as(messages.toString()).isEqualTo(GrpcStatus.INVALID_ARGUMENT);
        }
    }

    private Call open() {
        // Opened, and its response wired, on an event loop (see ClientChains).
        return await(ClientChains.onContext(vertx, () -> grpc.request(worker, WorkerGrpcClient.Generate).map(Call::new)));
    }

    /** One Generate call and what came back on it. */
    private static final class Call {
        final GrpcClientRequest<GenerateCall, GenerateEvent> request;
        final List<GenerateEvent> events = new CopyOnWriteArrayList<>();
        final CompletableFuture<Void> firstDeltas = new CompletableFuture<>();
        final CompletableFuture<Final> fin = new CompletableFuture<>();
        final CompletableFuture<GrpcStatus> status = new CompletableFuture<>();

        Call(GrpcClientRequest<GenerateCall, GenerateEvent> request) {
            this.request = request;
            request.response().onSuccess(this::read).onFailure(status::completeExceptionally);
        }

        private void read(GrpcClientResponse<GenerateCall, GenerateEvent> response) {
            response.handler(event -> {
                events.add(event);
                if (events.stream().filter(GenerateEvent::hasDelta).count() >= 2) {
                    firstDeltas.complete(null);
                }
                if (event.hasFinal()) {
                    fin.complete(event.getFinal());
                }
            });
            response.endHandler(v -> status.complete(response.status()));
            response.exceptionHandler(status::completeExceptionally);
        }
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("Vert.x future did not complete", e);
        }
    }
}
