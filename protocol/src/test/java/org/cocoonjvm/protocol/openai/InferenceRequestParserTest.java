package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.vertx.core.buffer.Buffer;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.InferenceRequest;
import org.cocoonjvm.protocol.grpc.Priority;
import org.cocoonjvm.protocol.grpc.SamplingParams;
import org.junit.jupiter.api.Test;

class InferenceRequestParserTest {

    private static InferenceRequest.Builder chat(String... roleThenContent) {
        ChatMessages.Builder messages = ChatMessages.newBuilder();
        for (int i = 0; i < roleThenContent.length; i += 2) {
            messages.addMessages(ChatMessage.newBuilder().setRole(roleThenContent[i]).setContent(roleThenContent[i + 1]));
        }
        return InferenceRequest.newBuilder().setModel("m").setChat(messages);
    }

    private static ApiException rejected(InferenceRequest.Builder request) {
        ApiException e = catchThrowableOfType(ApiException.class, () -> InferenceRequestParser.parse(request.build()));
        assertThat(e).as("rejection of %s", request).isNotNull();
        assertThat(e.kind()).isEqualTo(ErrorKind.INVALID_REQUEST);
        return e;
    }

    private static ApiException rejectedJson(String json) {
        return catchThrowableOfType(ApiException.class, () -> RequestParser.chat(Buffer.buffer(json)));
    }

    @Test
    void parse_fullChat_isTheSameRequestAsTheEquivalentJson() {
        ValidRequest grpc = InferenceRequestParser.parse(chat("system", "be brief", "user", "hello")
                .setMaxTokens(16)
                .setSampling(SamplingParams.newBuilder().setTemperature(0.5f).setTopP(0.25f).setTopK(40).setSeed(7)
                        .setPresencePenalty(1.5f).setFrequencyPenalty(-0.75f))
                .addStop("END").addStop("###")
                .setServiceTier(Priority.PRIORITY_FLEX)
                .build());
        ValidRequest http = RequestParser.chat(Buffer.buffer("""
                {"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}],
                 "max_tokens":16,"temperature":0.5,"top_p":0.25,"top_k":40,"seed":7,
                 "presence_penalty":1.5,"frequency_penalty":-0.75,"stop":["END","###"],"service_tier":"flex"}
                """));

        assertThat(grpc.generate("r")).isEqualTo(http.generate("r"));
        assertThat(grpc.tier()).isEqualTo(ServiceTier.FLEX);
        assertThat(grpc.flavor()).isEqualTo(CompletionMeta.Flavor.CHAT);
        assertThat(grpc.prefixHash()).isEqualTo(http.prefixHash()).isNotZero();
        assertThat(grpc.promptBytes()).isEqualTo(http.promptBytes());
        assertThat(grpc.stream()).isTrue();
        assertThat(grpc.includeUsage()).as("usage always ends the stream").isTrue();
    }

    @Test
    void parse_withoutSampling_usesTheOpenAiDefaults() {
        ValidRequest grpc = InferenceRequestParser.parse(chat("user", "hi").build());
        ValidRequest http = RequestParser.chat(Buffer.buffer("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"));

        assertThat(grpc.generate("r")).isEqualTo(http.generate("r"));
        assertThat(grpc.generate("r").getSampling().getTemperature()).isEqualTo(1f);
        assertThat(grpc.maxTokens()).as("0 = until the model stops").isZero();
        assertThat(grpc.tier()).isEqualTo(ServiceTier.DEFAULT);
    }

    @Test
    void parse_prompt_isTheSameRequestAsTheEquivalentCompletionJson() {
        ValidRequest grpc = InferenceRequestParser.parse(InferenceRequest.newBuilder().setModel("m").setPrompt("Once").setMaxTokens(3).build());
        ValidRequest http = RequestParser.completion(Buffer.buffer("{\"model\":\"m\",\"prompt\":\"Once\",\"max_tokens\":3}"));

        assertThat(grpc.generate("r")).isEqualTo(http.generate("r"));
        assertThat(grpc.flavor()).isEqualTo(CompletionMeta.Flavor.TEXT);
        assertThat(grpc.idPrefix()).isEqualTo("cmpl-");
    }

    @Test
    void parse_presentSamplingWithZeros_isGreedyWithFiltersOff() {
        SamplingParams s = InferenceRequestParser.parse(chat("user", "hi").setSampling(SamplingParams.getDefaultInstance()).build())
                .generate("r").getSampling();

        assertThat(s.getTemperature()).isZero();
        assertThat(s.getTopP()).isZero();
        assertThat(s.getTopK()).isZero();
    }

    @Test
    void parse_maxTokensZero_isRejectedNamingMaxTokens_withTheHttpMessage() {
        ApiException grpc = rejected(chat("user", "hi").setMaxTokens(0));

        assertThat(grpc.param()).isEqualTo("max_tokens");
        assertThat(grpc.getMessage()).isEqualTo(rejectedJson(
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":0}").getMessage());
    }

    @Test
    void parse_maxTokensAboveIntRange_isRejectedNamingMaxTokens() {
        ApiException e = rejected(chat("user", "hi").setMaxTokens(-1));  // uint32 4294967295

        assertThat(e.param()).isEqualTo("max_tokens");
        assertThat(e.getMessage()).contains("4294967295");
    }

    @Test
    void parse_temperatureThree_isRejectedNamingTheProtoField_withTheHttpMessage() {
        ApiException grpc = rejected(chat("user", "hi").setSampling(SamplingParams.newBuilder().setTemperature(3)));

        assertThat(grpc.param()).isEqualTo("sampling.temperature");
        assertThat(grpc.getMessage().replace("sampling.", "")).isEqualTo(rejectedJson(
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":3}").getMessage());
    }

    @Test
    void parse_nanTopP_isRejectedNamingTheProtoField() {
        assertThat(rejected(chat("user", "hi").setSampling(SamplingParams.newBuilder().setTopP(Float.NaN))).param())
                .isEqualTo("sampling.top_p");
    }

    @Test
    void parse_topKAboveIntRange_isRejectedNamingTheProtoField() {
        assertThat(rejected(chat("user", "hi").setSampling(SamplingParams.newBuilder().setTopK(-5))).param())
                .isEqualTo("sampling.top_k");
    }

    @Test
    void parse_penaltyOutOfRange_isRejectedNamingTheProtoField() {
        assertThat(rejected(chat("user", "hi").setSampling(SamplingParams.newBuilder().setFrequencyPenalty(2.5f))).param())
                .isEqualTo("sampling.frequency_penalty");
    }

    @Test
    void parse_blankModel_isRejectedNamingModel() {
        assertThat(rejected(chat("user", "hi").setModel(" ")).param()).isEqualTo("model");
    }

    @Test
    void parse_noInput_isRejectedNamingChat() {
        assertThat(rejected(InferenceRequest.newBuilder().setModel("m")).param()).isEqualTo("chat");
    }

    @Test
    void parse_emptyMessages_isRejectedNamingThem() {
        assertThat(rejected(chat()).param()).isEqualTo("chat.messages");
    }

    @Test
    void parse_badRoleInSecondMessage_isRejectedNamingItsIndex() {
        assertThat(rejected(chat("user", "hi", "wizard", "abracadabra")).param()).isEqualTo("chat.messages[1].role");
    }

    @Test
    void parse_emptyPrompt_isRejectedNamingPrompt() {
        assertThat(rejected(InferenceRequest.newBuilder().setModel("m").setPrompt("")).param()).isEqualTo("prompt");
    }

    @Test
    void parse_fiveStops_isRejectedNamingStop() {
        assertThat(rejected(chat("user", "hi").addStop("a").addStop("b").addStop("c").addStop("d").addStop("e")).param())
                .isEqualTo("stop");
    }

    @Test
    void parse_emptyStop_isRejectedNamingItsIndex() {
        assertThat(rejected(chat("user", "hi").addStop("a").addStop("")).param()).isEqualTo("stop[1]");
    }

    @Test
    void parse_unpairedSurrogate_isRejectedNamingTheProtoField_withTheHttpMessage() {
        ApiException grpc = rejected(chat("user", "hi", "user", "x \uD83D"));

        assertThat(grpc.param()).isEqualTo("chat.messages[1].content");
        assertThat(grpc.getMessage().replace("chat.", "")).isEqualTo(rejectedJson(
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"user\",\"content\":\"x \\ud83d\"}]}")
                .getMessage());
        assertThat(rejected(InferenceRequest.newBuilder().setModel("m").setPrompt("\uDE00")).param()).isEqualTo("prompt");
        assertThat(rejected(chat("user", "hi").addStop("\uD800")).param()).isEqualTo("stop[0]");
    }

    @Test
    void parse_emptyContent_isAcceptedAsJsonAcceptsAnEmptyString() {
        ValidRequest grpc = InferenceRequestParser.parse(chat("user", "").build());
        ValidRequest http = RequestParser.chat(Buffer.buffer("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}"));

        assertThat(grpc.generate("r")).isEqualTo(http.generate("r"));
    }

    @Test
    void parse_unknownServiceTier_isRejectedNamingIt() {
        ApiException e = rejected(chat("user", "hi").setServiceTierValue(7));

        assertThat(e.param()).isEqualTo("service_tier");
        assertThat(e.getMessage()).contains("7");
    }

    @Test
    void parse_clientRequestId_upToTheLimitIsAccepted_longerOrWithSpacesIsNot() {
        InferenceRequestParser.parse(chat("user", "hi").setClientRequestId("x".repeat(InferenceRequestParser.MAX_CLIENT_REQUEST_ID)).build());

        assertThat(rejected(chat("user", "hi").setClientRequestId("x".repeat(InferenceRequestParser.MAX_CLIENT_REQUEST_ID + 1)))
                .param()).isEqualTo("client_request_id");
        assertThat(rejected(chat("user", "hi").setClientRequestId("two words")).param()).isEqualTo("client_request_id");
    }
}
