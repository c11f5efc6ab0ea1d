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
        return await(http.request(new RequestOptions().setMethod(HttpMethod.POST).setHost(uri.getHost()).setPort(uri.getPort())
                        .setURI("/v1/chat/completions").putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(body)).compose(HttpClientResponse::body)).toJsonObject();
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
            return http.request(new RequestOptions().setMethod(HttpMethod.POST).setHost(uri.getHost()).setPort(uri.getPort())
                            .setURI("/v1/chat/completions").putHeader("Content-Type", "application/json"))
                    .compose(r -> r.send(body)).compose(HttpClientResponse::body);
        }).toList();
        for (var f : futures) {
            assertThat(content(await(f).toJsonObject())).isEqualTo(alone);
        }
    }

    @Test
    void maxTokensBeyondTheContext_isRejected() {
        JsonObject error = complete(",\"max_tokens\":100000").getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("message")).contains("context window is 256 tokens");
    }

    @Test
    void aRequestThatCouldOutgrowTheKvCache_isRejected() {
        // Without max_tokens it may run to the 256-token context; the cache holds 128 tokens.
        JsonObject error = complete("").getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("message")).contains("KV cache");
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
