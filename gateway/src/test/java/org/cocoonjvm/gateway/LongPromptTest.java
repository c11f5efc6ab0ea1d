package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;

import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Prompts over gRPC's default message size (256 KiB) but within the gateway's body limit reach
 * the worker, which answers them like any other: a worker that refused them at the transport
 * looked busy (503 with Retry-After) and the gateway tried the next worker.
 */
class LongPromptTest {
    private static final int PROMPT_BYTES = 300 * 1024;

    private final TestNetwork net = new TestNetwork(1024 * 1024);

    @AfterEach
    void stop() {
        net.close();
    }

    @Test
    void promptPastTheContextWindow_is400ContextLengthExceededFromTheWorker_andIsTriedOnce() {
        net.addWorker(1000);
        net.addWorker(1000);
        // The synthetic tokenizer makes a token of each word: far past its 4096-token window.
        String words = "word ".repeat(PROMPT_BYTES / 5);

        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat(words));

        assertThat(reply.status()).isEqualTo(400);
        JsonObject error = reply.json().getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo("context_length_exceeded");
        assertThat(error.getString("param")).isEqualTo("messages");
        assertThat(error.getString("message")).contains("context window is 4096");
        assertThat(reply.response().getHeader("Retry-After")).isNull();
        // A request is reported once its last write is done, which the client may see first.
        TestNetwork.eventually("the request is reported", () -> Exposition.parse(net.call(HttpMethod.GET, "/metrics", null, null).body())
                .value("cocoon_request_attempts_total").orElse(0) == 1);
        Exposition m = Exposition.parse(net.call(HttpMethod.GET, "/metrics", null, null).body());
        assertThat(m.get("cocoon_gateway_worker_healthy", "worker", "worker-1")).isEqualTo(1);
        assertThat(m.get("cocoon_gateway_worker_healthy", "worker", "worker-2")).isEqualTo(1);
    }

    @Test
    void promptThatFitsTheWindow_isAnswered() {
        net.addWorker(1000);
        String oneWord = "x".repeat(PROMPT_BYTES);

        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                new JsonObject(chat(oneWord)).put("max_tokens", 4).encode());

        assertThat(reply.status()).isEqualTo(200);
        JsonObject usage = reply.json().getJsonObject("usage");
        assertThat(usage.getInteger("prompt_tokens")).isEqualTo(2);  // the role marker and the word
        assertThat(usage.getInteger("completion_tokens")).isEqualTo(4);
    }

    private static String chat(String content) {
        return new JsonObject().put("model", "synthetic")
                .put("messages", new JsonArray().add(new JsonObject().put("role", "user").put("content", content))).encode();
    }
}
