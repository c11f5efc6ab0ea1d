package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;

import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.engine.Tokenizer;
import org.cocoonjvm.worker.model.ChatTemplate;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.Scheduler;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What a model's chat template does to a request, seen by a client of the gateway: workers run
 * the synthetic engine, but render chats with a real {@link ChatTemplate}, one in the style of
 * Mistral's (no system role, alternating turns, {@code raise_exception} otherwise).
 */
class ChatTemplateThroughTheGatewayTest {
    private static final String MISTRAL_STYLE = "{{ bos_token }}{% for message in messages %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
            + "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    /** Refuses a message starting with 'A', quoting it whole, as a template may. */
    private static final String QUOTING = "{% for message in messages %}{% if message['content'].startswith('A') %}"
            + "{{ raise_exception('bad: ' + message['content']) }}{% endif %}{{ message['content'] }}{% endfor %}";

    private final TestNetwork net = new TestNetwork();

    @AfterEach
    void stop() {
        net.close();
    }

    /**
     * 400 naming {@code messages}, with the template's own words; and not a worker failure: three
     * of them used to be 502s that opened every worker's circuit breaker, so the next valid
     * request found no capacity.
     */
    @Test
    void aChatTheTemplateRefuses_is400NamingMessages_andNoWorkerIsCountedFailing() {
        addTemplatedWorker();
        addTemplatedWorker();

        for (int i = 0; i < 3; i++) {
            TestNetwork.Reply refused = complete(message("system", "Be brief."), message("user", "Hi"));
            assertThat(refused.status()).isEqualTo(400);
            JsonObject error = refused.json().getJsonObject("error");
            assertThat(error.getString("type")).isEqualTo("invalid_request_error");
            assertThat(error.getString("param")).isEqualTo("messages");
            assertThat(error.getString("message")).contains("Conversation roles must alternate");
        }

        assertThat(net.gateway.registry().all()).allSatisfy(worker -> assertThat(worker.failures()).isZero());
        assertThat(complete(message("user", "Hi")).status()).isEqualTo(200);
    }

    /**
     * A refusal quoting 12 kB of the client's message used to overflow the gateway's limit on the
     * worker's trailers (8 KiB): the stream broke, and the refusal counted as a worker failure.
     */
    @Test
    void aRefusalQuotingALongMessage_isStill400_andNoWorkerFailure() {
        addTemplatedWorker(QUOTING);

        TestNetwork.Reply refused = complete(message("user", "A" + "x".repeat(12_000)));

        assertThat(refused.status()).isEqualTo(400);
        assertThat(refused.json().getJsonObject("error").getString("message")).startsWith(
                "The model's chat template refused these messages: bad: Axxx").endsWith("…").hasSizeLessThan(700);
        assertThat(net.gateway.registry().all()).allSatisfy(worker -> assertThat(worker.failures()).isZero());
    }

    /**
     * A worker's refusal reaches the client in the worker's words: gRPC sends a '+' as it is, and
     * Vert.x's own reading of the status message made it a space.
     */
    @Test
    void aRefusalQuotingPlusAndPercent_reachesTheClientAsTheWorkerWroteIt() {
        addTemplatedWorker(QUOTING);

        TestNetwork.Reply refused = complete(message("user", "A+B = 100% é"));

        assertThat(refused.status()).isEqualTo(400);
        assertThat(refused.json().getJsonObject("error").getString("message"))
                .isEqualTo("The model's chat template refused these messages: bad: A+B = 100% é");
    }

    /** What a message says reaches the model as text: it used to be rendered as template code too. */
    @Test
    void templateSyntaxInAMessage_isText() {
        addTemplatedWorker();
        String said = "In Jinja, {{ \"x\" * 3 }} and {% for i in range(3) %}{{ i }}{% endfor %} and {{ 7*7 }}";

        TestNetwork.Reply reply = complete(message("user", said));

        assertThat(reply.status()).isEqualTo(200);
        // The synthetic tokenizer counts words: the prompt is the template's text around the message, whole.
        String rendered = "<s>[INST] " + said + " [/INST]";
        assertThat(reply.json().getJsonObject("usage").getInteger("prompt_tokens")).isEqualTo(promptTokens(rendered));
    }

    private void addTemplatedWorker() {
        addTemplatedWorker(MISTRAL_STYLE);
    }

    private void addTemplatedWorker(String template) {
        net.addWorker((vertx, credit) -> new Scheduler(new TemplatedEngine(template), SchedulerOptions.DEFAULTS, credit),
                WorkerPaymentOptions.IN_MEMORY);
    }

    private TestNetwork.Reply complete(JsonObject... messages) {
        return net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, new JsonObject().put("model", "synthetic")
                .put("max_tokens", 4).put("messages", new JsonArray(List.of((Object[]) messages))).encode());
    }

    private static JsonObject message(String role, String content) {
        return new JsonObject().put("role", role).put("content", content);
    }

    private static int promptTokens(String text) {
        return new SyntheticEngine(1000, 4, 4096).tokenizer().encode(text).length;
    }

    /** The synthetic engine, whose chats are rendered by a real chat template before they are encoded. */
    private static final class TemplatedEngine extends DelegatingEngine {
        private final ChatTemplate template;

        private final Tokenizer tokenizer = new Tokenizer() {
            @Override
            public int[] encodeChat(List<ChatMessage> messages) {
                return encode(template.render(messages, true));
            }

            @Override
            public int[] encode(String text) {
                return engine.tokenizer().encode(text);
            }

            @Override
            public Decoder newDecoder() {
                return engine.tokenizer().newDecoder();
            }

            @Override
            public boolean isEndOfSequence(int token) {
                return engine.tokenizer().isEndOfSequence(token);
            }
        };

        TemplatedEngine(String template) {
            super(new SyntheticEngine(1000, 4, 4096));
            this.template = new ChatTemplate(template, "<s>", "</s>");
        }

        @Override
        public Tokenizer tokenizer() {
            return tokenizer;
        }
    }
}
