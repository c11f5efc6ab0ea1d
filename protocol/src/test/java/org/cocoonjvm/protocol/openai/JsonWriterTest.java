package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.util.function.Consumer;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The non-streamed answer, as a client receives it over a real HTTP connection. */
class JsonWriterTest {
    private static final CompletionMeta META = new CompletionMeta("chatcmpl-test", 1700000000L, "m", CompletionMeta.UsageReport.OWN_CHUNK);

    private LoopbackServer server;

    @AfterEach
    void stopServer() {
        if (server != null) {
            server.close();
        }
    }

    private HttpResponse<String> serve(Consumer<JsonWriter> script) throws Exception {
        server = new LoopbackServer(request -> script.accept(new JsonWriter(request, META)));
        return server.get();
    }

    private static Final fin(FinishReason reason, int prompt, int completion) {
        return Final.newBuilder().setFinishReason(reason)
                .setUsage(Usage.newBuilder().setPromptTokens(prompt).setCompletionTokens(completion)).build();
    }

    @Test
    void finish_afterTwoDeltas_answersOneChatCompletionDocument() throws Exception {
        HttpResponse<String> response = serve(sink -> {
            sink.delta(Delta.newBuilder().addTokenIds(1).setText("Hello").build());
            sink.delta(Delta.newBuilder().addTokenIds(2).setText(" \"world\"\n").build());
            sink.finish(fin(FinishReason.FINISH_REASON_STOP, 3, 2), null);
        });

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).contains("application/json");
        JsonObject body = new JsonObject(response.body());
        assertThat(body.getString("id")).isEqualTo("chatcmpl-test");
        assertThat(body.getString("object")).isEqualTo("chat.completion");
        assertThat(body.getLong("created")).isEqualTo(1700000000L);
        assertThat(body.getString("model")).isEqualTo("m");
        assertThat(body.containsKey("system_fingerprint")).isTrue();
        assertThat(body.getString("service_tier")).isEqualTo("default");
        assertThat(body.getJsonArray("choices")).hasSize(1);

        JsonObject choice = body.getJsonArray("choices").getJsonObject(0);
        assertThat(choice.getInteger("index")).isZero();
        assertThat(choice.getString("finish_reason")).isEqualTo("stop");
        assertThat(choice.containsKey("logprobs")).isTrue();
        assertThat(choice.getValue("logprobs")).isNull();
        JsonObject message = choice.getJsonObject("message");
        assertThat(message.getString("role")).isEqualTo("assistant");
        assertThat(message.getString("content")).isEqualTo("Hello \"world\"\n");
        assertThat(message.getValue("refusal")).isNull();

        JsonObject usage = body.getJsonObject("usage");
        assertThat(usage.getInteger("prompt_tokens")).isEqualTo(3);
        assertThat(usage.getInteger("completion_tokens")).isEqualTo(2);
        assertThat(usage.getInteger("total_tokens")).isEqualTo(5);
        assertThat(usage.getJsonObject("prompt_tokens_details").getInteger("cached_tokens")).isZero();
        assertThat(usage.getJsonObject("completion_tokens_details").getInteger("reasoning_tokens")).isZero();
    }

    @Test
    void finish_withLengthReason_reportsLength() throws Exception {
        HttpResponse<String> response = serve(sink -> {
            sink.delta(Delta.newBuilder().addTokenIds(1).setText("a").build());
            sink.finish(fin(FinishReason.FINISH_REASON_LENGTH, 1, 1), null);
        });

        assertThat(new JsonObject(response.body()).getJsonArray("choices").getJsonObject(0).getString("finish_reason"))
                .isEqualTo("length");
    }

    @Test
    void finish_withoutDeltas_answersEmptyContent() throws Exception {
        HttpResponse<String> response = serve(sink -> sink.finish(fin(FinishReason.FINISH_REASON_STOP, 2, 1), null));

        JsonObject message = new JsonObject(response.body()).getJsonArray("choices").getJsonObject(0).getJsonObject("message");
        assertThat(message.getString("content")).isEmpty();
    }

    @Test
    void fail_afterDeltas_answersErrorStatusAndJson() throws Exception {
        HttpResponse<String> response = serve(sink -> {
            sink.delta(Delta.newBuilder().addTokenIds(1).setText("partial").build());
            sink.fail(new ApiException(ErrorKind.RATE_LIMITED, "Slow down."));
            sink.finish(fin(FinishReason.FINISH_REASON_STOP, 1, 1), null); // ignored
        });

        assertThat(response.statusCode()).isEqualTo(429);
        assertThat(response.body()).isEqualTo(
                "{\"error\":{\"message\":\"Slow down.\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}");
    }

    @Test
    void fail_authentication_addsWwwAuthenticateHeader() throws Exception {
        HttpResponse<String> response = serve(sink -> sink.fail(BearerKeys.missingOrInvalid()));

        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(response.headers().firstValue("WWW-Authenticate")).contains("Bearer");
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("invalid_api_key");
    }

    @Test
    void finish_withErrorReason_answers502UpstreamError() throws Exception {
        HttpResponse<String> response = serve(sink ->
                sink.finish(Final.newBuilder().setFinishReason(FinishReason.FINISH_REASON_ERROR).setError("engine crashed").build(), null));

        assertThat(response.statusCode()).isEqualTo(502);
        JsonObject error = new JsonObject(response.body()).getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("api_error");
        assertThat(error.getString("code")).isEqualTo("upstream_error");
        assertThat(error.getString("message")).contains("engine crashed");
    }
}
