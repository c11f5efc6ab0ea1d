package org.cocoonjvm.worker.forward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.google.protobuf.ByteString;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.ServerSocket;
import java.net.URI;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.worker.ClientChains;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.EventTarget;
import org.cocoonjvm.worker.scheduler.GenerationException;
import org.cocoonjvm.worker.scheduler.OutputMailbox;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * A worker forwarding to an OpenAI-compatible server beside it. The upstream here is a real
 * server on loopback: another worker's own OpenAI API, serving the synthetic engine.
 */
class OpenAiForwarderTest {
    private Vertx vertx;
    private WorkerNode upstream;
    private HttpClient http;
    private final ListAppender<ILoggingEvent> forwarderLog = new ListAppender<>();

    @BeforeEach
    void start() {
        vertx = Vertx.vertx();
        upstream = new WorkerNode(new SyntheticEngine(40, 8, 4096),
                new WorkerOptions("upstream", "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 1000));
        await(vertx.deployVerticle(upstream));
        http = vertx.createHttpClient();
    }

    @AfterEach
    void stop() {
        ((Logger) LoggerFactory.getLogger(OpenAiForwarder.class)).detachAppender(forwarderLog);
        await(vertx.close());
    }

    private ForwarderOptions options(String upstreamModel) {
        return options(URI.create(upstream.endpoint()), upstreamModel, 60_000);
    }

    private static ForwarderOptions options(URI upstream, String upstreamModel, long idleTimeoutMs) {
        return options(upstream, upstreamModel, idleTimeoutMs, 32768);
    }

    /** @param context what the forwarder announces as its model's context */
    private static ForwarderOptions options(URI upstream, String upstreamModel, long idleTimeoutMs, int context) {
        return new ForwarderOptions(upstream, upstreamModel, null, new ModelInfo("big-model", "abc123", context), 4, 2000,
                idleTimeoutMs, true);
    }

    private WorkerNode forwarder(String upstreamModel) {
        return forwarder(options(upstreamModel));
    }

    private WorkerNode forwarder(ForwarderOptions options) {
        WorkerNode node = new WorkerNode(new OpenAiForwarder(vertx, options, CreditGate.NONE),
                new WorkerOptions("forwarder", "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 1000));
        await(vertx.deployVerticle(node));
        return node;
    }

    /** The forwarder's log lines from here on; {@link #stop} detaches it. */
    private ListAppender<ILoggingEvent> forwarderLog() {
        forwarderLog.start();
        ((Logger) LoggerFactory.getLogger(OpenAiForwarder.class)).addAppender(forwarderLog);
        return forwarderLog;
    }

    private List<String> warnings() {
        synchronized (forwarderLog.list) {
            return forwarderLog.list.stream().filter(e -> e.getLevel() == Level.WARN).map(ILoggingEvent::getFormattedMessage).toList();
        }
    }

    private List<String> awaitWarnings(int count) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (warnings().size() < count && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        return warnings();
    }

    private Future<HttpClientResponse> post(WorkerNode node, String body) {
        URI uri = URI.create(node.endpoint());
        return ClientChains.onContext(vertx, () -> http.request(new RequestOptions().setMethod(HttpMethod.POST)
                        .setHost(uri.getHost()).setPort(uri.getPort()).setURI("/v1/chat/completions")
                        .putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(body)));
    }

    private static String chat(String model, boolean stream, String extra) {
        return "{\"model\":\"" + model + "\",\"stream\":" + stream
                + ",\"messages\":[{\"role\":\"user\",\"content\":\"forward me\"}]" + extra + "}";
    }

    @Test
    void forwardsTextAndUpstreamUsage() {
        WorkerNode node = forwarder("synthetic");
        JsonObject direct = await(post(upstream, chat("synthetic", false, ",\"max_tokens\":7,\"seed\":3"))
                .compose(HttpClientResponse::body)).toJsonObject();
        JsonObject forwarded = await(post(node, chat("big-model", false, ",\"max_tokens\":7,\"seed\":3"))
                .compose(HttpClientResponse::body)).toJsonObject();

        assertThat(forwarded.getString("model")).isEqualTo("big-model");
        assertThat(forwarded.getJsonArray("choices").getJsonObject(0).getJsonObject("message").getString("content"))
                .isEqualTo(direct.getJsonArray("choices").getJsonObject(0).getJsonObject("message").getString("content"));
        assertThat(forwarded.getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(7);
        assertThat(forwarded.getJsonObject("usage").getInteger("prompt_tokens"))
                .isEqualTo(direct.getJsonObject("usage").getInteger("prompt_tokens"));
        assertThat(forwarded.getJsonArray("choices").getJsonObject(0).getString("finish_reason")).isEqualTo("length");
    }

    /**
     * The upstream's context (4096) is longer than the one the forwarder announces (8): a request
     * without max_tokens gets no more completion tokens than that, as the gateway holds and bounds
     * it by it, and ends at "length" (review Y, Y-4). Before, the whole reply (24 or more tokens)
     * went through, and the gateway cut it off as a worker past its bound.
     */
    @Test
    void aRequestWithoutMaxTokens_endsAtTheAnnouncedContext_thoughTheUpstreamServesMore() {
        JsonObject direct = await(post(upstream, chat("synthetic", false, ",\"max_tokens\":8,\"seed\":3"))
                .compose(HttpClientResponse::body)).toJsonObject();
        WorkerNode node = forwarder(options(URI.create(upstream.endpoint()), "synthetic", 60_000, 8));

        JsonObject forwarded = await(post(node, chat("big-model", false, ",\"seed\":3"))
                .compose(HttpClientResponse::body)).toJsonObject();

        assertThat(forwarded.getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(8);
        assertThat(forwarded.getJsonObject("usage").getInteger("prompt_tokens"))
                .isEqualTo(direct.getJsonObject("usage").getInteger("prompt_tokens"));
        assertThat(forwarded.getJsonArray("choices").getJsonObject(0).getString("finish_reason")).isEqualTo("length");
        assertThat(forwarded.getJsonArray("choices").getJsonObject(0).getJsonObject("message").getString("content"))
                .isEqualTo(direct.getJsonArray("choices").getJsonObject(0).getJsonObject("message").getString("content"));
    }

    @Test
    void streams_andEndsWithDone() {
        WorkerNode node = forwarder("synthetic");
        String body = await(post(node, chat("big-model", true, ",\"max_tokens\":5,\"stream_options\":{\"include_usage\":true}"))
                .compose(HttpClientResponse::body)).toString();
        assertThat(body).contains("\"object\":\"chat.completion.chunk\"").contains("\"completion_tokens\":5");
        assertThat(body.strip()).endsWith("data: [DONE]");
    }

    @Test
    void upstreamRefusal_isMappedBeforeAnyToken_andLoggedOnce() throws Exception {
        forwarderLog();
        WorkerNode node = forwarder("no-such-model");
        awaitWarnings(1);  // the start's check of the upstream's models
        JsonObject reply = await(post(node, chat("big-model", true, "")).compose(r -> {
            assertThat(r.statusCode()).isEqualTo(404);
            return r.body();
        })).toJsonObject();
        assertThat(reply.getJsonObject("error").getString("code")).isEqualTo("model_not_found");
        assertThat(awaitWarnings(2)).hasSize(2).last().asString().contains("failed it: HTTP 404")
                .doesNotContain("forward me");
    }

    @Test
    void aForwardUrlEndingInV1_meansTheSameServer() {
        WorkerNode node = forwarder(options(URI.create(upstream.endpoint() + "/v1/"), "synthetic", 60_000));
        JsonObject forwarded = await(post(node, chat("big-model", false, ",\"max_tokens\":3"))
                .compose(r -> {
                    assertThat(r.statusCode()).isEqualTo(200);
                    return r.body();
                })).toJsonObject();
        assertThat(forwarded.getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(3);
    }

    @Test
    void start_warnsOnce_ofAnUpstreamThatIsNotThere_orDoesNotServeTheModel() throws Exception {
        forwarderLog();
        int deadPort;
        try (ServerSocket socket = new ServerSocket(0)) {
            deadPort = socket.getLocalPort();
        }
        new OpenAiForwarder(vertx, options(URI.create("http://127.0.0.1:" + deadPort), "synthetic", 60_000), CreditGate.NONE)
                .start();
        assertThat(awaitWarnings(1)).singleElement().asString()
                .contains("http://127.0.0.1:" + deadPort + " did not answer GET /v1/models").contains("the worker starts anyway");

        new OpenAiForwarder(vertx, options("no-such-model"), CreditGate.NONE).start();
        assertThat(awaitWarnings(2)).last().asString().contains("does not serve the model 'no-such-model'")
                .contains("it serves [synthetic]");

        new OpenAiForwarder(vertx, options("synthetic"), CreditGate.NONE).start();
        Thread.sleep(300);
        assertThat(warnings()).hasSize(2);
    }

    /**
     * The upstream sends its first chunk, then nothing, on a connection it keeps open: the stream
     * fails after the idle timeout, billing the token it forwarded, and the upstream request is reset.
     */
    @Test
    void anUpstreamStallingMidStream_failsAfterTheIdleTimeout() throws Exception {
        forwarderLog();
        Promise<Void> upstreamReset = Promise.promise();
        HttpServer stalling = stallingUpstream(upstreamReset);
        WorkerNode node = forwarder(options(URI.create("http://127.0.0.1:" + stalling.actualPort()), "stalls", 300));

        long start = System.nanoTime();
        String body = await(post(node, chat("big-model", true, ",\"stream_options\":{\"include_usage\":true}"))
                .compose(HttpClientResponse::body)).toString();

        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isBetween(300L, 5_000L);
        assertThat(body).contains("\"content\":\"Hello\"").contains("\"prompt_tokens\":5,\"completion_tokens\":1")
                .contains("\"code\":\"upstream_error\"").contains("the upstream server sent nothing for");
        assertThat(body.strip()).endsWith("data: [DONE]");
        await(upstreamReset.future());
        assertThat(awaitWarnings(1)).singleElement().asString().contains("sent nothing for").doesNotContain("Hello");
    }

    /**
     * The worker stops while a forward runs on past its grace (1 s here): the forward fails as the
     * worker's planned stop, which its gateway tells from a fault, billing the token it forwarded.
     */
    @Test
    void aForwardStillRunningWhenTheGraceEnds_failsAsTheWorkersStop_notAsAFault() throws Exception {
        HttpServer stalling = stallingUpstream(Promise.promise());
        WorkerNode node = forwarder(options(URI.create("http://127.0.0.1:" + stalling.actualPort()), "stalls", 60_000));
        Promise<Void> firstChunk = Promise.promise();
        Future<String> body = post(node, chat("big-model", true, ",\"stream_options\":{\"include_usage\":true}"))
                .compose(response -> {
                    StringBuilder read = new StringBuilder();
                    Promise<String> all = Promise.promise();
                    response.handler(chunk -> {
                        read.append(chunk);
                        firstChunk.tryComplete();
                    }).endHandler(v -> all.complete(read.toString())).exceptionHandler(all::tryFail);
                    return all.future();
                });
        await(firstChunk.future());

        vertx.undeploy(node.deploymentID());

        assertThat(await(body)).contains("\"content\":\"Hello\"").contains("\"completion_tokens\":1")
                .contains("\"code\":\"shutting_down\"").contains(Generator.STOPPED_BEFORE_THE_END);
    }

    /** Sends its first chunk, then nothing, on a connection it keeps open; {@code reset} completes once it is closed. */
    private HttpServer stallingUpstream(Promise<Void> reset) {
        return await(vertx.createHttpServer().requestHandler(request -> {
            if (request.method() == HttpMethod.GET) {
                request.response().end("{\"object\":\"list\",\"data\":[{\"id\":\"stalls\"}]}");
                return;
            }
            request.response().closeHandler(v -> reset.tryComplete());
            request.response().setChunked(true).putHeader("Content-Type", "text/event-stream")
                    .write("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],"
                            + "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n");
        }).listen(0, "127.0.0.1"));
    }

    @Test
    void aRequestNamingNoOpenChannel_isRefusedAsPaymentRequired_beforeTheUpstreamSeesIt() {
        OpenAiForwarder forwarder = new OpenAiForwarder(vertx, options("synthetic"),
                new WorkerPayments(WorkerPaymentOptions.IN_MEMORY));
        GenerateRequest request = GenerateRequest.newBuilder().setModel("big-model").setPrompt("forward me")
                .setChannelId(ByteString.copyFrom(new byte[16])).build();

        assertThatThrownBy(() -> forwarder.submit(request, null)).isInstanceOfSatisfying(GenerationException.class,
                e -> assertThat(e.reason()).isEqualTo(GenerationException.Reason.PAYMENT_REQUIRED))
                .hasMessageStartingWith("payment_required: no channel");
        assertThat(forwarder.load().getRunning()).isZero();
        assertThat(upstreamStatus().getJsonObject("load").getLong("tokens_generated")).isZero();
    }

    @Test
    void clientDisconnect_cancelsTheUpstreamGeneration_andIsNoUpstreamFailure() throws Exception {
        forwarderLog();
        WorkerNode node = forwarder("synthetic");
        StringBuilder seen = new StringBuilder();
        // The handler set on the loop, as the response comes: from the test thread, chunks could go by before it.
        HttpClientResponse response = await(ClientChains.onContext(vertx, () -> post(node, chat("big-model", true, "")).map(r -> r.handler(b -> {
            synchronized (seen) {
                seen.append(b.toString());
            }
        }))));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!seenText(seen).contains("chat.completion.chunk") && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat(upstreamRunning()).isEqualTo(1);

        response.request().connection().close();

        while (upstreamRunning() != 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertThat(upstreamRunning()).isZero();
        long generated = upstreamStatus().getJsonObject("load").getLong("tokens_generated");
        assertThat(generated).isLessThan(24);  // the shortest full synthetic reply
        Thread.sleep(100);
        assertThat(warnings()).isEmpty();
    }

    /**
     * This project's own worker as the upstream, its stream cut short (here: the client gone, so
     * no final usage comes): its running usage ({@code continuous_usage_stats}) gave the prompt to bill.
     */
    @Test
    void aCocoonWorkerUpstreamCutShort_stillBillsThePrompt() throws Exception {
        OpenAiForwarder forwarder = new OpenAiForwarder(vertx, options("synthetic"), CreditGate.NONE);
        CompletableFuture<Void> firstDelta = new CompletableFuture<>();
        CompletableFuture<Final> finished = new CompletableFuture<>();
        EventTarget recorder = new EventTarget() {
            @Override
            public void delta(Delta delta) {
                firstDelta.complete(null);
            }

            @Override
            public void finish(Final fin) {
                finished.complete(fin);
            }

            @Override
            public boolean writeQueueFull() {
                return false;
            }

            @Override
            public void drainHandler(Handler<Void> handler) {
            }
        };
        Runnable cancel = forwarder.submit(GenerateRequest.newBuilder().setRequestId("cut").setModel("big-model")
                .setPrompt("forward me").setMaxTokens(40).build(), new OutputMailbox(vertx.getOrCreateContext(), recorder));

        firstDelta.get(5, TimeUnit.SECONDS);
        cancel.run();

        Usage billed = finished.get(5, TimeUnit.SECONDS).getUsage();
        assertThat(billed.getPromptTokens()).isEqualTo(2);  // "forward me", a token a word in the synthetic engine
        assertThat(billed.getCompletionTokens()).isBetween(1, 39);
        assertThat(forwarder.load().getRunning()).isZero();
    }

    private static String seenText(StringBuilder seen) {
        synchronized (seen) {
            return seen.toString();
        }
    }

    private int upstreamRunning() {
        return upstreamStatus().getJsonObject("load").getInteger("running");
    }

    private JsonObject upstreamStatus() {
        URI uri = URI.create(upstream.endpoint());
        Buffer body = await(ClientChains.onContext(vertx, () -> http.request(HttpMethod.GET, uri.getPort(), uri.getHost(), "/status")
                .compose(r -> r.send().compose(HttpClientResponse::body))));
        return body.toJsonObject();
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
