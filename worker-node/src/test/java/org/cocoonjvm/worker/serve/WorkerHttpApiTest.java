package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.worker.ClientChains;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A real {@link WorkerNode} on a free loopback port, called over real HTTP connections. */
class WorkerHttpApiTest {
    private static final Duration DEADLINE = Duration.ofSeconds(5);
    private static final String KEY = "k";
    /** The synthetic engine ends every reply with end-of-sequence after at least this many tokens. */
    private static final int SYNTHETIC_MIN_LENGTH = 24;

    private Vertx vertx;
    private WorkerNode node;
    private HttpClient http;

    @BeforeEach
    void deployWorker() {
        vertx = Vertx.vertx();
        // 50 tokens/s: 20 ms a step, so a reply without max_tokens streams for at least 480 ms.
        node = new WorkerNode(new SyntheticEngine(50, 4, 2048),
                new WorkerOptions("worker-test", "127.0.0.1", 0, KEY, null, SchedulerOptions.DEFAULTS, 1000));
        await(vertx.deployVerticle(node));
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(DEADLINE).build();
    }

    @AfterEach
    void undeploy() {
        http.close();
        await(vertx.close());
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new AssertionError("Vert.x future did not complete", e);
        }
    }

    private int port() {
        return URI.create(node.endpoint()).getPort();
    }

    private HttpRequest.Builder call(String path) {
        return HttpRequest.newBuilder(URI.create(node.endpoint() + path)).timeout(DEADLINE);
    }

    private HttpResponse<String> send(HttpRequest request) throws Exception {
        return http.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> chat(String key, String body) throws Exception {
        HttpRequest.Builder request = call("/v1/chat/completions").header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (key != null) {
            request.header("Authorization", "Bearer " + key);
        }
        return send(request.build());
    }

    private JsonObject status() throws Exception {
        HttpResponse<String> response = send(call("/status").header("Authorization", "Bearer " + KEY).GET().build());
        assertThat(response.statusCode()).isEqualTo(200);
        return new JsonObject(response.body());
    }

    private JsonObject pollStatusUntil(String what, java.util.function.Predicate<JsonObject> condition) throws Exception {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (true) {
            JsonObject status = status();
            if (condition.test(status)) {
                return status;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("timed out waiting until " + what + "; last status " + status.encode());
            }
            Thread.sleep(5);
        }
    }

    private static List<JsonObject> chunks(String sseBody) {
        assertThat(sseBody).endsWith("data: [DONE]\n\n");
        List<JsonObject> chunks = new ArrayList<>();
        String[] events = sseBody.split("\n\n");
        for (int i = 0; i < events.length - 1; i++) {
            assertThat(events[i]).startsWith("data: ");
            chunks.add(new JsonObject(events[i].substring("data: ".length())));
        }
        assertThat(events[events.length - 1]).isEqualTo("data: [DONE]");
        return chunks;
    }

    @Test
    void models_listsTheSyntheticModel() throws Exception {
        HttpResponse<String> response = send(call("/v1/models").header("Authorization", "Bearer " + KEY).GET().build());

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).contains("application/json");
        JsonObject body = new JsonObject(response.body());
        assertThat(body.getString("object")).isEqualTo("list");
        JsonArray data = body.getJsonArray("data");
        assertThat(data).hasSize(1);
        JsonObject model = data.getJsonObject(0);
        assertThat(model.getString("id")).isEqualTo("synthetic");
        assertThat(model.getString("object")).isEqualTo("model");
        assertThat(model.getString("hash")).isEqualTo(node.model().hash());
        assertThat(model.getInteger("max_context")).isEqualTo(2048);
    }

    @Test
    void chat_streamed_returnsChunksThenDone() throws Exception {
        HttpResponse<String> response = chat(KEY, """
                {"model":"synthetic","messages":[{"role":"user","content":"stream three words"}],
                 "max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}""");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(
                v -> assertThat(v).startsWith("text/event-stream"));
        List<JsonObject> chunks = chunks(response.body());
        assertThat(chunks).hasSizeGreaterThanOrEqualTo(3); // content (merged or not), finish, usage
        assertThat(chunks).allSatisfy(c -> {
            assertThat(c.getString("object")).isEqualTo("chat.completion.chunk");
            assertThat(c.getString("id")).startsWith("chatcmpl-").isEqualTo(chunks.getFirst().getString("id"));
            assertThat(c.getString("model")).isEqualTo("synthetic");
        });
        assertThat(chunks.getFirst().getJsonArray("choices").getJsonObject(0).getJsonObject("delta").getString("role"))
                .isEqualTo("assistant");

        StringBuilder content = new StringBuilder();
        List<JsonObject> choiceChunks = chunks.subList(0, chunks.size() - 1);
        for (JsonObject chunk : choiceChunks) {
            content.append(chunk.getJsonArray("choices").getJsonObject(0).getJsonObject("delta").getString("content", ""));
        }
        assertThat(content.toString().split(" ")).hasSize(3);
        assertThat(choiceChunks.getLast().getJsonArray("choices").getJsonObject(0).getString("finish_reason"))
                .isEqualTo("length");

        JsonObject usageChunk = chunks.getLast();
        assertThat(usageChunk.getJsonArray("choices")).isEmpty();
        assertThat(usageChunk.getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(3);
        assertThat(usageChunk.getJsonObject("usage").getInteger("prompt_tokens")).isEqualTo(4); // role marker + 3 words
    }

    /** vLLM's running usage, which a forwarding worker in front of this one bills a stream cut short by. */
    @Test
    void chat_streamedWithContinuousUsageStats_putsTheUsageSoFarOnEveryContentChunk() throws Exception {
        HttpResponse<String> response = chat(KEY, """
                {"model":"synthetic","messages":[{"role":"user","content":"stream three words"}],
                 "max_tokens":3,"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}""");

        List<JsonObject> content = chunks(response.body()).stream()
                .filter(c -> !c.getJsonArray("choices").isEmpty()
                        && !c.getJsonArray("choices").getJsonObject(0).getJsonObject("delta").getString("content", "").isEmpty())
                .toList();
        assertThat(content).isNotEmpty().allSatisfy(c -> assertThat(c.getJsonObject("usage").getInteger("prompt_tokens")).isEqualTo(4));
        assertThat(content.getLast().getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(3);
        assertThat(content.getLast().getJsonObject("usage").getInteger("total_tokens")).isEqualTo(7);
    }

    @Test
    void chat_notStreamed_returnsOneChatCompletion() throws Exception {
        HttpResponse<String> response = chat(KEY,
                "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"two words\"}],\"max_tokens\":2}");

        assertThat(response.statusCode()).isEqualTo(200);
        JsonObject body = new JsonObject(response.body());
        assertThat(body.getString("object")).isEqualTo("chat.completion");
        JsonObject choice = body.getJsonArray("choices").getJsonObject(0);
        assertThat(choice.getString("finish_reason")).isEqualTo("length");
        assertThat(choice.getJsonObject("message").getString("content").split(" ")).hasSize(2);
        assertThat(body.getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(2);
    }

    @Test
    void chat_wrongKey_is401WithErrorJson() throws Exception {
        HttpResponse<String> response = chat("not-the-key",
                "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(response.headers().firstValue("WWW-Authenticate")).contains("Bearer");
        JsonObject error = new JsonObject(response.body()).getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("authentication_error");
        assertThat(error.getString("code")).isEqualTo("invalid_api_key");
        assertThat(error.getString("message")).isNotBlank();
    }

    @Test
    void models_withoutKey_is401() throws Exception {
        HttpResponse<String> response = send(call("/v1/models").GET().build());

        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("invalid_api_key");
    }

    @Test
    void status_withoutKey_is401() throws Exception {
        HttpResponse<String> response = send(call("/status").GET().build());

        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("invalid_api_key");
    }

    @Test
    void bodyOverTheLimit_is413WithErrorJson() throws Exception {
        HttpResponse<String> response = chat(KEY, "x".repeat((int) WorkerHttpApi.MAX_BODY_BYTES + 1));

        assertThat(response.statusCode()).isEqualTo(413);
        assertThat(response.headers().firstValue("Content-Type")).contains("application/json");
        JsonObject error = new JsonObject(response.body()).getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo("payload_too_large");
        assertThat(error.getString("message")).contains(String.valueOf(WorkerHttpApi.MAX_BODY_BYTES));
    }

    @Test
    void chat_invalidBody_is400NamingTheParam() throws Exception {
        HttpResponse<String> response = chat(KEY, "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":2}");

        assertThat(response.statusCode()).isEqualTo(400);
        JsonObject error = new JsonObject(response.body()).getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("param")).isEqualTo("n");
    }

    @Test
    void promptPastTheContextWindow_is400ContextLengthExceeded_namingMessagesOrPrompt() throws Exception {
        // The synthetic tokenizer makes a token of each word: 3000 words overflow its 2048-token window.
        String words = "word ".repeat(3000);
        HttpResponse<String> chat = chat(KEY, new JsonObject().put("model", "synthetic")
                .put("messages", new JsonArray().add(new JsonObject().put("role", "user").put("content", words))).encode());
        HttpResponse<String> completion = send(call("/v1/completions").header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(new JsonObject().put("model", "synthetic").put("prompt", words).encode()))
                .build());
        // A short prompt whose max_tokens leaves no room is the same error.
        HttpResponse<String> maxTokens = chat(KEY,
                "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2048}");

        assertContextLengthExceeded(chat, "messages");
        assertContextLengthExceeded(completion, "prompt");
        assertContextLengthExceeded(maxTokens, "messages");
    }

    /** OpenAI's answer to a request that does not fit the model. */
    private static void assertContextLengthExceeded(HttpResponse<String> response, String param) {
        assertThat(response.statusCode()).isEqualTo(400);
        JsonObject error = new JsonObject(response.body()).getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("code")).isEqualTo("context_length_exceeded");
        assertThat(error.getString("param")).isEqualTo(param);
        assertThat(error.getString("message")).contains("context window is 2048");
    }

    @Test
    void chat_unknownModel_is404ModelNotFoundEvenWhenStreamed() throws Exception {
        HttpResponse<String> response = chat(KEY,
                "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}");

        assertThat(response.statusCode()).isEqualTo(404);
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("model_not_found");
    }

    @Test
    void aWrongMethodOnAKnownPath_is405WithAllow_asAtTheGateway() throws Exception {
        for (String path : List.of("/earnings", "/status", "/metrics", "/v1/models")) {
            HttpResponse<String> response = send(call(path).header("Authorization", "Bearer " + KEY)
                    .POST(HttpRequest.BodyPublishers.ofString("{}")).build());

            assertThat(response.statusCode()).as(path).isEqualTo(405);
            assertThat(response.headers().firstValue("Allow")).as(path).hasValue("GET, HEAD");
            JsonObject error = new JsonObject(response.body()).getJsonObject("error");
            assertThat(error.getString("code")).isEqualTo("method_not_allowed");
            assertThat(error.getString("message")).isEqualTo("POST is not allowed on " + path + "; use GET, HEAD.");
        }
        HttpResponse<String> getCompletions = send(call("/v1/chat/completions").header("Authorization", "Bearer " + KEY)
                .GET().build());
        assertThat(getCompletions.statusCode()).isEqualTo(405);
        assertThat(getCompletions.headers().firstValue("Allow")).hasValue("POST");
        // The key still comes first: a caller without it learns nothing of the routes.
        assertThat(send(call("/earnings").POST(HttpRequest.BodyPublishers.ofString("{}")).build()).statusCode()).isEqualTo(401);
    }

    @Test
    void unknownRoute_is404NotFound() throws Exception {
        HttpResponse<String> response = send(call("/v1/embeddings").header("Authorization", "Bearer " + KEY)
                .POST(HttpRequest.BodyPublishers.ofString("{}")).build());

        assertThat(response.statusCode()).isEqualTo(404);
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("not_found");
    }

    /**
     * As at the gateway (audit T, T-8): Vert.x alone answered a request line of any version but
     * HTTP/1.0 and HTTP/1.1 with a bare 501 repeating the client's version. A later HTTP/1 minor
     * is served as HTTP/1.1; any other version is a 505 with the OpenAI error body, and the
     * connection closes (the read below ends only because it does).
     */
    @Test
    void requestLineVersions_http12IsServedAsHttp11_othersAre505() throws Exception {
        assertThat(rawHttp1("GET /v1/models HTTP/1.2\r\nHost: x\r\nAuthorization: Bearer " + KEY + "\r\nConnection: close\r\n\r\n"))
                .startsWith("HTTP/1.1 200").contains("\"object\":\"list\"");
        for (String version : List.of("HTTP/0.9", "HTTP/2.0", "FOO/1.1")) {
            assertThat(rawHttp1("GET /v1/models " + version + "\r\nHost: x\r\n\r\n")).as(version)
                    .startsWith("HTTP/1.1 505").containsIgnoringCase("connection: close")
                    .contains("\"code\":\"http_version_not_supported\"", "version \\\"" + version + "\\\" is not served",
                            "\"type\":\"invalid_request_error\"");
        }
    }

    /** Writes {@code request} as it is on a new connection, and reads until the worker closes it. */
    private String rawHttp1(String request) throws Exception {
        try (java.net.Socket socket = new java.net.Socket("127.0.0.1", port())) {
            socket.setSoTimeout((int) DEADLINE.toMillis());
            socket.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            return new String(socket.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.ISO_8859_1);
        }
    }

    @Test
    void status_reportsWorkerModelAndLoad() throws Exception {
        JsonObject status = status();

        assertThat(status.getString("worker_id")).isEqualTo("worker-test");
        assertThat(status.getString("engine")).isEqualTo("synthetic");
        assertThat(status.getJsonArray("models")).hasSize(1);
        assertThat(status.getJsonArray("models").getJsonObject(0).getString("name")).isEqualTo("synthetic");
        JsonObject load = status.getJsonObject("load");
        assertThat(load.fieldNames()).contains("running", "waiting", "capacity", "tokens_generated", "prompt_tokens");
        assertThat(load.getInteger("running")).isZero();
        assertThat(load.getInteger("waiting")).isZero();
        assertThat(load.getInteger("capacity")).isEqualTo(4);
        assertThat(load.getLong("tokens_generated")).isZero();
    }

    @Test
    void status_whileTheWorkerStops_saysDraining() throws Exception {
        http.sendAsync(call("/v1/chat/completions").header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                        "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"a long reply\"}],\"stream\":true}"))
                .build(), HttpResponse.BodyHandlers.discarding());
        pollStatusUntil("the reply runs", s -> s.getJsonObject("load").getInteger("running") == 1);
        assertThat(status().getString("state")).isEqualTo("serving");

        vertx.undeploy(node.deploymentID());

        JsonObject draining = pollStatusUntil("the worker drains", s -> "draining".equals(s.getString("state")));
        assertThat(draining.getJsonObject("load").getInteger("running")).isEqualTo(1);
    }

    @Test
    void status_afterACompletion_countsItsTokens() throws Exception {
        chat(KEY, "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3}");

        // The engine thread retires the sequence after handing out its last token: the reply can come first.
        JsonObject status = pollStatusUntil("the tokens are counted and the sequence retired",
                s -> s.getJsonObject("load").getLong("tokens_generated") == 3 && s.getJsonObject("load").getInteger("running") == 0);

        assertThat(status.getJsonObject("load").getInteger("waiting")).isZero();
    }

    private HttpResponse<String> metrics() throws Exception {
        return send(call("/metrics").header("Authorization", "Bearer " + KEY).GET().build());
    }

    /** The value of the series {@code series} (name and labels as exported), or null when it is absent. */
    private static Double sample(String exposition, String series) {
        for (String line : exposition.split("\n")) {
            if (line.startsWith(series + " ")) {
                return Double.parseDouble(line.substring(series.length() + 1).trim());
            }
        }
        return null;
    }

    @Test
    void metrics_afterACompletion_exportTheTokensOfItsUsageTheCapacityAndNothingRunning() throws Exception {
        HttpResponse<String> chat = chat(KEY,
                "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3}");
        int completionTokens = new JsonObject(chat.body()).getJsonObject("usage").getInteger("completion_tokens");

        // The scheduler counts a step's tokens after handing them out: the reply can come first.
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        HttpResponse<String> response = metrics();
        while (!Double.valueOf(completionTokens).equals(sample(response.body(), "cocoon_worker_generation_tokens_total"))
                && System.nanoTime() - deadline < 0) {
            Thread.sleep(5);
            response = metrics();
        }

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).contains("text/plain; version=0.0.4; charset=utf-8");
        String body = response.body();
        assertThat(sample(body, "cocoon_worker_generation_tokens_total")).isEqualTo(completionTokens);
        assertThat(sample(body, "cocoon_worker_requests_running")).isZero();
        assertThat(sample(body, "cocoon_worker_requests_waiting")).isZero();
        assertThat(sample(body, "cocoon_worker_capacity")).isEqualTo(4);
        // No gateway: no registration state is the current one.
        assertThat(sample(body, "cocoon_worker_gateway_registration{state=\"registered\"}")).isZero();
        assertThat(body).doesNotContain("cocoon_worker_channel_");  // no payment channel opened
        assertThat(body).contains("jvm_memory_used_bytes{", "jvm_gc_", "process_uptime_seconds ");
    }

    @Test
    void metrics_withoutKey_is401() throws Exception {
        HttpResponse<String> response = send(call("/metrics").GET().build());

        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("invalid_api_key");
    }

    @Test
    void chat_clientClosesConnectionMidStream_cancelsTheSequence() throws Exception {
        io.vertx.core.http.HttpClient client = vertx.createHttpClient();
        CompletableFuture<String> firstChunk = new CompletableFuture<>();
        Buffer body = Buffer.buffer(
                "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"a long reply please\"}],\"stream\":true}");
        // On an event loop (see ClientChains): the chunk handler is then set as the response arrives, not after.
        HttpClientResponse response = await(ClientChains.onContext(vertx, () -> client
                .request(HttpMethod.POST, port(), "127.0.0.1", "/v1/chat/completions")
                .compose(request -> request.putHeader("Authorization", "Bearer " + KEY)
                        .putHeader("Content-Type", "application/json")
                        .send(body))
                .onSuccess(r -> r.handler(chunk -> firstChunk.complete(chunk.toString())))));
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(firstChunk.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)).startsWith("data: {");
        assertThat(status().getJsonObject("load").getInteger("running")).isEqualTo(1);

        await(response.request().connection().close());

        JsonObject status = pollStatusUntil("the sequence stops", s -> s.getJsonObject("load").getInteger("running") == 0);
        // Cut short: a reply that ran to its end would have at least SYNTHETIC_MIN_LENGTH tokens.
        assertThat(status.getJsonObject("load").getLong("tokens_generated")).isLessThan(SYNTHETIC_MIN_LENGTH);
    }
}
