package org.cocoonjvm.worker.kernels;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.worker.ClientChains;
import org.cocoonjvm.worker.model.DType;
import org.cocoonjvm.worker.model.LoadedModel;
import org.cocoonjvm.worker.model.ModelFormat;
import org.cocoonjvm.worker.model.ModelLoader;
import org.cocoonjvm.worker.model.RandomModel;
import org.cocoonjvm.worker.model.RandomModelSpec;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker serving a real (random-weight) transformer on the native engine, end to end over
 * HTTP: chat template, tokenizer, scheduler, kernels, sampling in C, detokenizer.
 */
class NativeWorkerTest {
    @TempDir
    static Path dir;
    private static Vertx vertx;
    private static WorkerNode worker;
    private static HttpClient http;
    private static String model;

    @BeforeAll
    static void start() throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny("qwen2").withDtype(DType.F16).withName("tiny-qwen2");
        RandomModel.write(spec, dir, Set.of(ModelFormat.HF));
        LoadedModel loaded = ModelLoader.load(dir.resolve(RandomModel.HF_DIR));
        model = loaded.name();
        vertx = Vertx.vertx();
        worker = new WorkerNode(new NativeEngine(loaded, new NativeEngineOptions(2, 4, 128, 16, 512)),
                new WorkerOptions("native", "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 1000));
        await(vertx.deployVerticle(worker));
        http = vertx.createHttpClient();
    }

    @AfterAll
    static void stop() {
        await(vertx.close());
    }

    private static JsonObject complete(String extra) {
        URI uri = URI.create(worker.endpoint());
        String body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                + "{\"role\":\"user\",\"content\":\"Hello there, héllo ✓\"}]" + extra + "}";
        return await(ClientChains.onContext(vertx, () -> http.request(new RequestOptions().setMethod(HttpMethod.POST)
                        .setHost(uri.getHost()).setPort(uri.getPort()).setURI("/v1/chat/completions")
                        .putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(body)).compose(HttpClientResponse::body))).toJsonObject();
    }

    private static String content(JsonObject completion) {
        return completion.getJsonArray("choices").getJsonObject(0).getJsonObject("message").getString("content");
    }

    @Test
    void greedy_isDeterministic_andCountsTokens() {
        JsonObject a = complete(",\"temperature\":0,\"max_tokens\":12");
        JsonObject b = complete(",\"temperature\":0,\"max_tokens\":12");
        assertThat(content(a)).isEqualTo(content(b));
        JsonObject usage = a.getJsonObject("usage");
        assertThat(usage.getInteger("prompt_tokens")).isGreaterThan(10);  // the chat template's markers and the text
        assertThat(usage.getInteger("completion_tokens")).isBetween(1, 12);
    }

    @Test
    void seededSampling_isReproducible_andSeedMatters() {
        String first = content(complete(",\"temperature\":1.5,\"seed\":11,\"max_tokens\":16"));
        assertThat(content(complete(",\"temperature\":1.5,\"seed\":11,\"max_tokens\":16"))).isEqualTo(first);
        boolean anyDiffers = false;
        for (int seed = 12; seed < 16 && !anyDiffers; seed++) {
            anyDiffers = !content(complete(",\"temperature\":1.5,\"seed\":" + seed + ",\"max_tokens\":16")).equals(first);
        }
        assertThat(anyDiffers).as("some other seed gives another completion").isTrue();
    }

    @Test
    void sameRequests_concurrently_giveTheSameGreedyText() {
        String alone = content(complete(",\"temperature\":0,\"max_tokens\":10"));
        var futures = java.util.stream.IntStream.range(0, 4).mapToObj(i -> {
            URI uri = URI.create(worker.endpoint());
            String body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                    + "{\"role\":\"user\",\"content\":\"Hello there, héllo ✓\"}],\"temperature\":0,\"max_tokens\":10}";
            return ClientChains.onContext(vertx, () -> http.request(new RequestOptions().setMethod(HttpMethod.POST)
                            .setHost(uri.getHost()).setPort(uri.getPort()).setURI("/v1/chat/completions")
                            .putHeader("Content-Type", "application/json"))
                    .compose(r -> r.send(body)).compose(HttpClientResponse::body));
        }).toList();
        for (var f : futures) {
            assertThat(content(await(f).toJsonObject())).isEqualTo(alone);
        }
    }

    @Test
    void maxTokensBeyondWhatTheKvCacheHolds_isRejectedAsContextLengthExceeded() {
        // The model's context is 256 tokens; this worker's KV cache holds 128.
        JsonObject error = complete(",\"max_tokens\":200").getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("code")).isEqualTo("context_length_exceeded");
        assertThat(error.getString("param")).isEqualTo("messages");
        assertThat(error.getString("message")).contains("context window is 128 tokens").contains("of the model's 256");
    }

    @Test
    void withoutMaxTokens_theCompletionIsCappedAtWhatTheKvCacheHolds() {
        JsonObject completion = complete(",\"temperature\":0");
        JsonObject usage = completion.getJsonObject("usage");
        assertThat(usage.getInteger("total_tokens")).isLessThanOrEqualTo(128);
        assertThat(completion.getJsonArray("choices").getJsonObject(0).getString("finish_reason")).isIn("stop", "length");
    }

    @Test
    void advertisedContext_isWhatTheKvCacheHolds() {
        assertThat(worker.model().maxContext()).isEqualTo(128);
        URI uri = URI.create(worker.endpoint());
        JsonObject models = await(ClientChains.onContext(vertx, () -> http.request(HttpMethod.GET, uri.getPort(), uri.getHost(),
                "/v1/models").compose(r -> r.send().compose(HttpClientResponse::body)))).toJsonObject();
        assertThat(models.getJsonArray("data").getJsonObject(0).getInteger("max_context")).isEqualTo(128);
        JsonObject status = await(ClientChains.onContext(vertx, () -> http.request(HttpMethod.GET, uri.getPort(), uri.getHost(),
                "/status").compose(r -> r.send().compose(HttpClientResponse::body)))).toJsonObject();
        assertThat(status.getJsonArray("models").getJsonObject(0).getInteger("max_context")).isEqualTo(128);
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
