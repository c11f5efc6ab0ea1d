package org.cocoonjvm.worker.forward;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.GenerationException;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A worker forwarding to an OpenAI-compatible server beside it. The upstream here is a real
 * server on loopback: another worker's own OpenAI API, serving the synthetic engine.
 */
class OpenAiForwarderTest {
    private Vertx vertx;
    private WorkerNode upstream;
    private HttpClient http;

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
        await(vertx.close());
    }

    private ForwarderOptions options(String upstreamModel) {
        return new ForwarderOptions(URI.create(upstream.endpoint()), upstreamModel, null,
                new ModelInfo("big-model", "abc123", 32768), 4, 2000, true);
    }

    private WorkerNode forwarder(String upstreamModel) {
        WorkerNode node = new WorkerNode(new OpenAiForwarder(vertx, options(upstreamModel), CreditGate.NONE),
                new WorkerOptions("forwarder", "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 1000));
        await(vertx.deployVerticle(node));
        return node;
    }

    private Future<HttpClientResponse> post(WorkerNode node, String body) {
        URI uri = URI.create(node.endpoint());
        return http.request(new RequestOptions().setMethod(HttpMethod.POST).setHost(uri.getHost()).setPort(uri.getPort())
                        .setURI("/v1/chat/completions").putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(body));
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

    @Test
    void streams_andEndsWithDone() {
        WorkerNode node = forwarder("synthetic");
        String body = await(post(node, chat("big-model", true, ",\"max_tokens\":5,\"stream_options\":{\"include_usage\":true}"))
                .compose(HttpClientResponse::body)).toString();
        assertThat(body).contains("\"object\":\"chat.completion.chunk\"").contains("\"completion_tokens\":5");
        assertThat(body.strip()).endsWith("data: [DONE]");
    }

    @Test
    void upstreamRefusal_isMappedBeforeAnyToken() {
        WorkerNode node = forwarder("no-such-model");
        JsonObject reply = await(post(node, chat("big-model", true, "")).compose(r -> {
            assertThat(r.statusCode()).isEqualTo(404);
            return r.body();
        })).toJsonObject();
        assertThat(reply.getJsonObject("error").getString("code")).isEqualTo("model_not_found");
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
    void clientDisconnect_cancelsTheUpstreamGeneration() throws Exception {
        WorkerNode node = forwarder("synthetic");
        StringBuilder seen = new StringBuilder();
        HttpClientResponse response = await(post(node, chat("big-model", true, "")).map(r -> r.handler(b -> {
            synchronized (seen) {
                seen.append(b.toString());
            }
        })));
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
        Buffer body = await(http.request(HttpMethod.GET, uri.getPort(), uri.getHost(), "/status")
                .compose(r -> r.send().compose(HttpClientResponse::body)));
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
