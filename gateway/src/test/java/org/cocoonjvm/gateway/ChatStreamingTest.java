package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The streaming path end to end: client -> gateway -> gRPC -> worker and back. */
class ChatStreamingTest {
    private TestNetwork net;

    @BeforeEach
    void start() {
        net = new TestNetwork();
    }

    @AfterEach
    void stop() {
        net.close();
    }

    @Test
    void stream_chunksArriveAsGenerated_thenUsage_thenDone() throws Exception {
        net.addWorker(50);  // one token every 20 ms
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":12,\"stream_options\":{\"include_usage\":true}"));

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.getHeader("Content-Type")).startsWith("text/event-stream");
        assertThat(response.getHeader("Cache-Control")).isEqualTo("no-cache");
        assertThat(response.getHeader("X-Accel-Buffering")).isEqualTo("no");
        List<SseEvents.Event> events = SseEvents.read(response).ended.get(10, TimeUnit.SECONDS);

        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        List<SseEvents.Event> content = events.stream().filter(e -> SseEvents.content(e) != null).toList();
        // Twelve tokens 20 ms apart: a buffering relay would deliver them in one burst at the end.
        assertThat(content).hasSizeGreaterThanOrEqualTo(6);
        long spreadMs = TimeUnit.NANOSECONDS.toMillis(content.getLast().arrivedNanos() - content.getFirst().arrivedNanos());
        assertThat(spreadMs).isGreaterThanOrEqualTo(100);

        JsonObject first = new JsonObject(content.getFirst().data());
        assertThat(first.getString("object")).isEqualTo("chat.completion.chunk");
        assertThat(first.getString("model")).isEqualTo("synthetic");
        assertThat(first.getJsonArray("choices").getJsonObject(0).getJsonObject("delta").getString("role")).isEqualTo("assistant");

        JsonObject finish = new JsonObject(events.get(events.size() - 3).data());
        assertThat(finish.getJsonArray("choices").getJsonObject(0).getString("finish_reason")).isEqualTo("length");
        JsonObject usageChunk = new JsonObject(events.get(events.size() - 2).data());
        assertThat(usageChunk.getJsonArray("choices")).isEmpty();
        JsonObject usage = usageChunk.getJsonObject("usage");
        assertThat(usage.getInteger("completion_tokens")).isEqualTo(12);
        assertThat(usage.getInteger("prompt_tokens")).isPositive();
        assertThat(usage.getInteger("total_tokens")).isEqualTo(usage.getInteger("prompt_tokens") + 12);
        // Every chunk of one completion carries the same id.
        assertThat(events.stream().filter(e -> !e.data().equals("[DONE]"))
                .map(e -> new JsonObject(e.data()).getString("id")).distinct()).hasSize(1);
    }

    @Test
    void stream_alwaysEndsWithUsageAndCost_andTheAccountIsDebitedExactly() throws Exception {
        net.addWorker(1000);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":3"));  // no include_usage: usage comes anyway
        List<SseEvents.Event> events = SseEvents.read(response).ended.get(10, TimeUnit.SECONDS);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        // On the finish chunk, not a chunk of its own with no choice, which loops reading
        // choices[0] of every chunk (the SDKs' README examples) fail on (audit M, M-1).
        JsonObject finish = new JsonObject(events.get(events.size() - 2).data());
        assertThat(finish.getJsonArray("choices").getJsonObject(0).getString("finish_reason")).isEqualTo("length");
        assertThat(events.subList(0, events.size() - 1)).allSatisfy(e -> assertThat(new JsonObject(e.data())
                .getJsonArray("choices")).isNotEmpty());
        JsonObject usage = finish.getJsonObject("usage");
        long tokens = usage.getLong("prompt_tokens") + usage.getLong("completion_tokens");
        // Cocoon's test prices: 2 nanoTON a token, multipliers 1.0, coefficient 1.0.
        assertThat(usage.getLong("prompt_total_cost")).isEqualTo(2 * usage.getLong("prompt_tokens"));
        assertThat(usage.getLong("completion_total_cost")).isEqualTo(2 * 3);
        assertThat(usage.getLong("total_cost")).isEqualTo(2 * tokens);
        var account = net.accounts.balance(TestNetwork.ACCOUNT);
        assertThat(account.spentNanoton()).isEqualTo(2 * tokens);
        assertThat(account.balanceNanoton()).isEqualTo(TestNetwork.START_BALANCE - 2 * tokens);
        assertThat(account.reservedNanoton()).isZero();
    }

    @Test
    void nonStreaming_returnsOneCompletionWithUsage() {
        net.addWorker(1000);
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));

        assertThat(reply.status()).isEqualTo(200);
        JsonObject body = reply.json();
        assertThat(body.getString("object")).isEqualTo("chat.completion");
        JsonObject choice = body.getJsonArray("choices").getJsonObject(0);
        assertThat(choice.getString("finish_reason")).isEqualTo("length");
        assertThat(choice.getJsonObject("message").getString("content").split(" ")).hasSize(5);
        assertThat(body.getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(5);
    }

    @Test
    void sameSeed_sameCompletion_throughGatewayAndDirect() {
        var worker = net.addWorker(1000);
        String body = chat("synthetic", false, "\"seed\":7");
        String viaGateway = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, body).json()
                .getJsonArray("choices").getJsonObject(0).getJsonObject("message").getString("content");
        var direct = net.vertx.createHttpClient();
        String viaWorker = await(net.onClientContext(() -> direct.request(new io.vertx.core.http.RequestOptions().setMethod(HttpMethod.POST)
                        .setHost("127.0.0.1").setPort(TestNetwork.portOf(worker)).setURI("/v1/chat/completions")
                        .putHeader("Authorization", "Bearer " + API_KEY).putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(body)).compose(r -> r.body()))).toJsonObject()
                .getJsonArray("choices").getJsonObject(0).getJsonObject("message").getString("content");
        assertThat(viaGateway).isNotBlank().isEqualTo(viaWorker);
    }

    @Test
    void clientDisconnect_stopsGenerationOnWorker() throws Exception {
        var worker = net.addWorker(20);  // a full synthetic reply (24+ tokens) takes over a second
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("two chunks arrived", () -> sse.size() >= 2);
        assertThat(net.workerStatus(worker).getJsonObject("load").getInteger("running")).isEqualTo(1);

        response.request().connection().close();

        TestNetwork.eventually("the worker stopped the sequence",
                () -> net.workerStatus(worker).getJsonObject("load").getInteger("running") == 0);
        long generated = net.workerStatus(worker).getJsonObject("load").getLong("tokens_generated");
        Thread.sleep(200);  // four more steps at 20 tokens/s, had it kept going
        assertThat(net.workerStatus(worker).getJsonObject("load").getLong("tokens_generated")).isEqualTo(generated);
        assertThat(generated).isLessThan(24);
        TestNetwork.eventually("the gateway released the slot",
                () -> net.gateway.registry().all().iterator().next().inFlight() == 0);
    }
}
