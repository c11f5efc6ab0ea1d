package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.net.http.HttpResponse;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Golden tests of the exact SSE bytes a client receives over a real HTTP connection. */
class SseWriterTest {
    private static final CompletionMeta META = new CompletionMeta("chatcmpl-test", 1700000000L, "m", CompletionMeta.UsageReport.OWN_CHUNK);
    private static final String HEAD =
            "data: {\"id\":\"chatcmpl-test\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\","
            + "\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":[";

    private LoopbackServer server;

    @AfterEach
    void stopServer() {
        if (server != null) {
            server.close();
        }
    }

    private HttpResponse<String> serve(CompletionMeta meta, Consumer<SseWriter> script) throws Exception {
        server = new LoopbackServer(request -> script.accept(new SseWriter(request, meta)));
        return server.get();
    }

    private static Delta delta(String text, int... tokens) {
        Delta.Builder d = Delta.newBuilder().setText(text);
        Arrays.stream(tokens).forEach(d::addTokenIds);
        return d.build();
    }

    private static Final fin(FinishReason reason, int prompt, int completion) {
        return Final.newBuilder().setFinishReason(reason)
                .setUsage(Usage.newBuilder().setPromptTokens(prompt).setCompletionTokens(completion)).build();
    }

    /** The body split into events, checking the SSE framing on the way. */
    private static List<String> events(String body) {
        assertThat(body).endsWith("\n\n");
        List<String> events = Arrays.asList(body.substring(0, body.length() - 2).split("\n\n", -1));
        assertThat(events).allSatisfy(e -> {
            assertThat(e).startsWith("data: ");
            assertThat(e).doesNotContain("\n");
        });
        return events;
    }

    @Test
    void stream_twoDeltasAndFinal_produceExactChunksUsageAndDone() throws Exception {
        HttpResponse<String> response = serve(META, sink -> {
            sink.delta(delta("Hello", 11));
            sink.delta(delta("", 12)); // a token that completed no text: no event
            sink.delta(delta(" \"wo\"rld\n", 13, 14));
            sink.finish(fin(FinishReason.FINISH_REASON_STOP, 3, 2), null);
        });

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(
                v -> assertThat(v).startsWith("text/event-stream"));
        assertThat(response.headers().firstValue("Cache-Control")).contains("no-cache");
        assertThat(response.headers().firstValue("X-Accel-Buffering")).contains("no");
        assertThat(response.body()).isEqualTo(
                HEAD + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                + HEAD + "{\"index\":0,\"delta\":{\"content\":\" \\\"wo\\\"rld\\n\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                + HEAD + "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
                + HEAD + "],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,"
                + "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"
                + "data: [DONE]\n\n");

        List<String> events = events(response.body());
        assertThat(events).hasSize(5).last().isEqualTo("data: [DONE]");
        for (String event : events.subList(0, 4)) {
            JsonObject chunk = new JsonObject(event.substring("data: ".length()));
            assertThat(chunk.getString("object")).isEqualTo("chat.completion.chunk");
        }
        assertThat(new JsonObject(events.get(1).substring(6)).getJsonArray("choices").getJsonObject(0)
                .getJsonObject("delta").getString("content")).isEqualTo(" \"wo\"rld\n");
    }

    /** Text all escapes needs more room than the event is sized for: the buffer grows, the bytes stay exact. */
    @Test
    void stream_deltaOfControlCharacters_isWrittenWhole() throws Exception {
        String controls = "\u0001\u001f\t\"\\\u2028".repeat(20);
        HttpResponse<String> response = serve(META, sink -> {
            sink.delta(delta(controls, 11));
            sink.finish(fin(FinishReason.FINISH_REASON_STOP, 3, 1), null);
        });

        // U+2028 escaped too (JavaScript line separator); written as "\\" + "u2028" so javac reads no escape in it.
        String escaped = ("\\u0001\\u001f\\t\\\"\\\\" + "\\" + "u2028").repeat(20);
        assertThat(events(response.body()).getFirst()).isEqualTo(
                HEAD + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"" + escaped
                        + "\"},\"logprobs\":null,\"finish_reason\":null}]}");
        assertThat(new JsonObject(events(response.body()).getFirst().substring(6)).getJsonArray("choices").getJsonObject(0)
                .getJsonObject("delta").getString("content")).isEqualTo(controls);
    }

    @Test
    void stream_withoutIncludeUsage_endsAfterFinishChunk() throws Exception {
        HttpResponse<String> response = serve(new CompletionMeta("chatcmpl-test", 1700000000L, "m", CompletionMeta.UsageReport.NONE), sink -> {
            sink.delta(delta("Hi", 1));
            sink.finish(fin(FinishReason.FINISH_REASON_LENGTH, 3, 1), null);
        });

        assertThat(response.body()).isEqualTo(
                HEAD + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                + HEAD + "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n"
                + "data: [DONE]\n\n");
    }

    /**
     * The gateway's stream for a client that did not ask for the usage chunk: the usage and cost
     * ride on the finish chunk, so every chunk has a {@code choices[0]} (audit M, M-1).
     */
    @Test
    void stream_usageOnTheFinishChunk_everyChunkHasAChoice() throws Exception {
        HttpResponse<String> response = serve(new CompletionMeta("chatcmpl-test", 1700000000L, "m",
                CompletionMeta.UsageReport.FINISH_CHUNK), sink -> {
            sink.delta(delta("Hi", 1));
            sink.finish(fin(FinishReason.FINISH_REASON_STOP, 3, 1), new UsageCost(6, 2, 8));
        });

        assertThat(response.body()).isEqualTo(
                HEAD + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                + HEAD + "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
                + "\"completion_tokens\":1,\"total_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":0},"
                + "\"completion_tokens_details\":{\"reasoning_tokens\":0},\"prompt_total_cost\":6,\"completion_total_cost\":2,"
                + "\"total_cost\":8}}\n\n"
                + "data: [DONE]\n\n");
    }

    /** A failure midway with the usage on no chunk of its own: the error event carries it. */
    @Test
    void fail_afterADelta_usageOnTheFinishChunk_goesInTheErrorEvent() throws Exception {
        HttpResponse<String> response = serve(new CompletionMeta("chatcmpl-test", 1700000000L, "m",
                CompletionMeta.UsageReport.FINISH_CHUNK), sink -> {
            sink.delta(delta("Hi", 1));
            sink.fail(new ApiException(ErrorKind.UPSTREAM, "The worker went away."),
                    Usage.newBuilder().setPromptTokens(3).setCompletionTokens(1).build(), new UsageCost(6, 2, 8));
        });

        List<String> events = events(response.body());
        assertThat(events).hasSize(3);
        JsonObject error = new JsonObject(events.get(1).substring(6));
        assertThat(error.getJsonObject("error").getString("code")).isEqualTo("upstream_error");
        assertThat(error.getJsonObject("usage").getLong("total_cost")).isEqualTo(8);
        assertThat(events.get(0)).doesNotContain("usage");
    }

    @Test
    void stream_finalWithoutAnyDelta_sendsRoleAndEmptyContentInFinishChunk() throws Exception {
        HttpResponse<String> response = serve(new CompletionMeta("chatcmpl-test", 1700000000L, "m", CompletionMeta.UsageReport.NONE),
                sink -> sink.finish(fin(FinishReason.FINISH_REASON_STOP, 4, 1), null));

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.body()).isEqualTo(
                HEAD + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
                + "data: [DONE]\n\n");
    }

    @Test
    void stream_cancelledFinal_reportsStop() throws Exception {
        HttpResponse<String> response = serve(new CompletionMeta("chatcmpl-test", 1700000000L, "m", CompletionMeta.UsageReport.NONE), sink -> {
            sink.delta(delta("a", 1));
            sink.finish(fin(FinishReason.FINISH_REASON_CANCELLED, 1, 1), null);
        });

        assertThat(events(response.body()).get(1)).contains("\"finish_reason\":\"stop\"");
    }

    @Test
    void fail_beforeAnyDelta_answersWithErrorStatusAndOpenAiErrorJson() throws Exception {
        CompletableFuture<boolean[]> state = new CompletableFuture<>();
        HttpResponse<String> response = serve(META, sink -> {
            sink.fail(new ApiException(ErrorKind.NO_CAPACITY, "All workers are busy."));
            state.complete(new boolean[] {sink.committed(), sink.ended()});
            sink.delta(delta("ignored", 1)); // after the end, nothing more is written
        });

        assertThat(response.statusCode()).isEqualTo(503);
        assertThat(response.headers().firstValue("Content-Type")).contains("application/json");
        assertThat(response.body()).isEqualTo(
                "{\"error\":{\"message\":\"All workers are busy.\",\"type\":\"api_error\",\"param\":null,\"code\":\"no_capacity\"}}");
        assertThat(state.get(5, TimeUnit.SECONDS)).containsExactly(false, true);
    }

    @Test
    void fail_beforeAnyDelta_usesTheStatusOfEachErrorKind() throws Exception {
        HttpResponse<String> response = serve(META, sink -> sink.fail(ApiException.invalid("messages", "bad")));

        assertThat(response.statusCode()).isEqualTo(ErrorKind.INVALID_REQUEST.httpStatus);
        JsonObject error = new JsonObject(response.body()).getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("param")).isEqualTo("messages");
        assertThat(error.getString("message")).isEqualTo("bad");
    }

    @Test
    void fail_afterADelta_sendsInBandErrorEventThenDone() throws Exception {
        CompletableFuture<boolean[]> state = new CompletableFuture<>();
        HttpResponse<String> response = serve(META, sink -> {
            sink.delta(delta("Hi", 1));
            boolean committedAfterDelta = sink.committed();
            sink.fail(new ApiException(ErrorKind.UPSTREAM, "The worker went away."));
            state.complete(new boolean[] {committedAfterDelta, sink.ended()});
            sink.finish(fin(FinishReason.FINISH_REASON_STOP, 1, 1), null); // ignored: already ended
        });

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.body()).isEqualTo(
                HEAD + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                + "data: {\"error\":{\"message\":\"The worker went away.\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"}}\n\n"
                + "data: [DONE]\n\n");
        assertThat(state.get(5, TimeUnit.SECONDS)).containsExactly(true, true);
    }

    @Test
    void fail_afterADelta_withUsage_sendsTheUsageChunkThenTheErrorEventThenDone() throws Exception {
        HttpResponse<String> response = serve(META, sink -> {
            sink.delta(delta("Hi", 1));
            sink.fail(new ApiException(ErrorKind.UPSTREAM, "The worker went away."),
                    Usage.newBuilder().setPromptTokens(3).setCompletionTokens(1).build(), new UsageCost(6, 2, 8));
        });

        assertThat(response.body()).isEqualTo(
                HEAD + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
                + HEAD + "],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4,"
                + "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0},"
                + "\"prompt_total_cost\":6,\"completion_total_cost\":2,\"total_cost\":8}}\n\n"
                + "data: {\"error\":{\"message\":\"The worker went away.\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"}}\n\n"
                + "data: [DONE]\n\n");
    }

    @Test
    void fail_afterADelta_withUsageTheClientDidNotAskFor_sendsNoUsageChunk() throws Exception {
        HttpResponse<String> response = serve(new CompletionMeta("chatcmpl-test", 1700000000L, "m", CompletionMeta.UsageReport.NONE), sink -> {
            sink.delta(delta("Hi", 1));
            sink.fail(new ApiException(ErrorKind.UPSTREAM, "The worker went away."),
                    Usage.newBuilder().setPromptTokens(3).setCompletionTokens(1).build(), new UsageCost(6, 2, 8));
        });

        assertThat(events(response.body())).hasSize(3).noneMatch(e -> e.contains("\"usage\""));
    }

    @Test
    void finish_withErrorReasonAfterADelta_becomesInBandUpstreamError() throws Exception {
        HttpResponse<String> response = serve(META, sink -> {
            sink.delta(delta("Hi", 1));
            sink.finish(Final.newBuilder().setFinishReason(FinishReason.FINISH_REASON_ERROR).setError("out of memory").build(), null);
        });

        List<String> events = events(response.body());
        assertThat(events).hasSize(4);  // the delta, the usage, the error, [DONE]
        assertThat(new JsonObject(events.get(1).substring(6)).getJsonObject("usage")).isNotNull();
        JsonObject error = new JsonObject(events.get(2).substring(6)).getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo("upstream_error");
        assertThat(error.getString("message")).contains("out of memory");
        assertThat(events.get(3)).isEqualTo("data: [DONE]");
    }

    @Test
    void finish_withErrorReasonBeforeAnyDelta_answers502() throws Exception {
        HttpResponse<String> response = serve(META, sink ->
                sink.finish(Final.newBuilder().setFinishReason(FinishReason.FINISH_REASON_ERROR).setError("boom").build(), null));

        assertThat(response.statusCode()).isEqualTo(502);
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("upstream_error");
    }
}
