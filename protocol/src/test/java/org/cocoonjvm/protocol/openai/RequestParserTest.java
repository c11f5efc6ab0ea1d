package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.assertj.core.api.Assertions.within;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.function.Function;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.SamplingParams;
import org.junit.jupiter.api.Test;

class RequestParserTest {

    private static final String MESSAGES = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";

    /** A minimal valid request with {@code extra} (a comma-led list of fields, or "") appended. */
    private static String request(String extra) {
        return "{\"model\":\"m\"," + MESSAGES + extra + "}";
    }

    private static ValidRequest parse(String json) {
        return RequestParser.chat(Buffer.buffer(json));
    }

    private static ApiException rejected(String json) {
        return rejected(json, RequestParser::chat);
    }

    private static ApiException rejectedCompletion(String json) {
        return rejected(json, RequestParser::completion);
    }

    private static ApiException rejected(String json, Function<Buffer, ValidRequest> parser) {
        ApiException e = catchThrowableOfType(ApiException.class, () -> parser.apply(Buffer.buffer(json)));
        assertThat(e).as("rejection of %s", json).isNotNull();
        assertThat(e.kind()).isEqualTo(ErrorKind.INVALID_REQUEST);
        assertThat(e.getMessage()).isNotBlank();
        return e;
    }

    /** A string where a boolean or a number belongs is shown as a string, or "got true" reads as no error at all. */
    @Test
    void wrongTypes_showTheValueAsJson() {
        assertThat(rejected(request(",\"stream\":\"true\"")).getMessage()).isEqualTo("'stream' must be a boolean, got \"true\".");
        assertThat(rejected(request(",\"max_tokens\":\"3\"")).getMessage()).isEqualTo("'max_tokens' must be an integer, got \"3\".");
        assertThat(rejected(request(",\"temperature\":\"0.5\"")).getMessage()).isEqualTo("'temperature' must be a number, got \"0.5\".");
        assertThat(rejected(request(",\"temperature\":[1]")).getMessage()).isEqualTo("'temperature' must be a number, got [1].");
        assertThat(rejected(request(",\"max_tokens\":\"" + "a".repeat(100_000) + "\"")).getMessage())
                .as("a client's long value is cut short").hasSizeLessThan(120).endsWith("aaa….");
    }

    @Test
    void parse_fullRequest_mapsEveryFieldToGenerateRequest() {
        ValidRequest valid = parse("""
                {"model":"llama-3-8b",
                 "messages":[{"role":"system","content":"be brief"},
                             {"role":"user","content":[{"type":"text","text":"hello "},{"type":"text","text":"there"}]},
                             {"role":"assistant","content":""}],
                 "max_tokens":16,
                 "stop":"END",
                 "temperature":0.5, "top_p":0.25, "top_k":40,
                 "presence_penalty":1.5, "frequency_penalty":-0.75,
                 "seed":7,
                 "stream":true, "stream_options":{"include_usage":true},
                 "user":"ignored-unknown-field", "metadata":{"a":"b"}, "n":1}
                """);

        assertThat(valid.model()).isEqualTo("llama-3-8b");
        assertThat(valid.stream()).isTrue();
        assertThat(valid.includeUsage()).isTrue();

        GenerateRequest generate = valid.generate("req-1");
        assertThat(generate.getRequestId()).isEqualTo("req-1");
        assertThat(generate.getModel()).isEqualTo("llama-3-8b");
        assertThat(generate.getInputCase()).isEqualTo(GenerateRequest.InputCase.CHAT);
        assertThat(generate.getChat().getMessagesList()).containsExactly(
                ChatMessage.newBuilder().setRole("system").setContent("be brief").build(),
                ChatMessage.newBuilder().setRole("user").setContent("hello there").build(),
                ChatMessage.newBuilder().setRole("assistant").setContent("").build());
        assertThat(generate.getMaxTokens()).isEqualTo(16);
        assertThat(generate.getStopList()).containsExactly("END");

        SamplingParams sampling = generate.getSampling();
        assertThat(sampling.getTemperature()).isEqualTo(0.5f);
        assertThat(sampling.getTopP()).isEqualTo(0.25f);
        assertThat(sampling.getTopK()).isEqualTo(40);
        assertThat(sampling.getPresencePenalty()).isEqualTo(1.5f);
        assertThat(sampling.getFrequencyPenalty()).isEqualTo(-0.75f);
        assertThat(sampling.hasSeed()).isTrue();
        assertThat(sampling.getSeed()).isEqualTo(7L);
    }

    @Test
    void parse_minimalRequest_usesDefaults() {
        ValidRequest valid = parse(request(""));

        assertThat(valid.stream()).isFalse();
        assertThat(valid.includeUsage()).isFalse();
        GenerateRequest generate = valid.generate("r");
        assertThat(generate.getMaxTokens()).as("0 = until the model stops").isZero();
        assertThat(generate.getStopList()).isEmpty();
        assertThat(generate.getSampling().getTemperature()).isEqualTo(1f);
        assertThat(generate.getSampling().getTopP()).isZero();
        assertThat(generate.getSampling().getTopK()).isZero();
        assertThat(generate.getSampling().hasSeed()).isFalse();
    }

    @Test
    void parse_maxCompletionTokens_winsOverMaxTokens() {
        GenerateRequest generate = parse(request(",\"max_completion_tokens\":5,\"max_tokens\":9")).generate("r");

        assertThat(generate.getMaxTokens()).isEqualTo(5);
    }

    @Test
    void parse_maxCompletionTokensAlone_setsMaxTokens() {
        assertThat(parse(request(",\"max_completion_tokens\":12")).generate("r").getMaxTokens()).isEqualTo(12);
    }

    @Test
    void parse_stopArray_keepsEveryStringInOrder() {
        GenerateRequest generate = parse(request(",\"stop\":[\"\\n\\n\",\"###\",\"User:\",\"x\"]")).generate("r");

        assertThat(generate.getStopList()).containsExactly("\n\n", "###", "User:", "x");
    }

    @Test
    void parse_streamWithoutStreamOptions_doesNotIncludeUsage() {
        ValidRequest valid = parse(request(",\"stream\":true"));

        assertThat(valid.stream()).isTrue();
        assertThat(valid.includeUsage()).isFalse();
    }

    @Test
    void parse_temperatureZeroAndTwo_areAcceptedBounds() {
        assertThat(parse(request(",\"temperature\":0")).generate("r").getSampling().getTemperature()).isZero();
        assertThat(parse(request(",\"temperature\":2")).generate("r").getSampling().getTemperature()).isEqualTo(2f);
    }

    @Test
    void parse_fractionalTopP_isKeptAsFloat() {
        assertThat(parse(request(",\"top_p\":0.9")).generate("r").getSampling().getTopP()).isCloseTo(0.9f, within(1e-6f));
    }

    @Test
    void parse_emptyToolsArrayAndTextResponseFormat_areAccepted() {
        ValidRequest valid = parse(request(",\"tools\":[],\"response_format\":{\"type\":\"text\"},\"logprobs\":false"));

        assertThat(valid.model()).isEqualTo("m");
    }

    @Test
    void parse_missingModel_isRejectedNamingModel() {
        assertThat(rejected("{" + MESSAGES + "}").param()).isEqualTo("model");
    }

    @Test
    void parse_blankModel_isRejectedNamingModel() {
        assertThat(rejected("{\"model\":\"  \"," + MESSAGES + "}").param()).isEqualTo("model");
    }

    @Test
    void parse_emptyMessages_isRejectedNamingMessages() {
        assertThat(rejected("{\"model\":\"m\",\"messages\":[]}").param()).isEqualTo("messages");
    }

    @Test
    void parse_missingMessages_isRejectedNamingMessages() {
        assertThat(rejected("{\"model\":\"m\"}").param()).isEqualTo("messages");
    }

    @Test
    void parse_badRole_isRejectedNamingMessageRole() {
        assertThat(rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}").param())
                .isEqualTo("messages[0].role");
    }

    @Test
    void parse_badRoleInSecondMessage_isRejectedNamingItsIndex() {
        assertThat(rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"content\":\"no role\"}]}")
                .param()).isEqualTo("messages[1].role");
    }

    @Test
    void parse_imageContentPart_isRejectedNamingThePart() {
        assertThat(rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                + "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}").param())
                .isEqualTo("messages[0].content[1]");
    }

    @Test
    void parse_nEqualsTwo_isRejectedNamingParam() {
        assertThat(rejected(request(",\"n\":2")).param()).isEqualTo("n");
    }

    @Test
    void parse_temperatureThree_isRejectedNamingParam() {
        assertThat(rejected(request(",\"temperature\":3")).param()).isEqualTo("temperature");
    }

    /**
     * The reservation's bound on prompt tokens is UTF-8 bytes: a byte-level tokenizer makes three
     * tokens of 日 and four of 😀, one and two UTF-16 characters.
     */
    @Test
    void promptBytes_countsRolesAndContentsInUtf8() {
        ValidRequest request = parse("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"é\"},"
                + "{\"role\":\"user\",\"content\":\"日😀a\"}]}");
        assertThat(request.promptBytes()).isEqualTo(("system" + "é" + "user" + "日😀a").getBytes(StandardCharsets.UTF_8).length)
                .isEqualTo(6 + 2 + 4 + 3 + 4 + 1);
        assertThat(RequestParser.completion(Buffer.buffer("{\"model\":\"m\",\"prompt\":\"日日\"}")).promptBytes()).isEqualTo(6);
    }

    @Test
    void parse_temperatureAsString_isRejectedNamingParam() {
        assertThat(rejected(request(",\"temperature\":\"hot\"")).param()).isEqualTo("temperature");
    }

    /** OpenAI accepts 0 to 1: the nucleus of 0 is the most likely token, sent as top_k 1 since 0 is "unset" on the wire. */
    @Test
    void parse_topPZero_keepsOnlyTheMostLikelyToken() {
        var sampling = parse(request(",\"top_p\":0,\"top_k\":40")).generate("r").getSampling();
        assertThat(sampling.getTopK()).isEqualTo(1);
        assertThat(sampling.getTopP()).isZero();
        assertThat(rejected(request(",\"top_p\":-0.1")).param()).isEqualTo("top_p");
    }

    @Test
    void parse_streamOptionsWithoutStream_isRejectedNamingParam() {
        assertThat(rejected(request(",\"stream_options\":{\"include_usage\":true}")).param()).isEqualTo("stream_options");
    }

    @Test
    void parse_streamOptionsWithStreamFalse_isRejectedNamingParam() {
        assertThat(rejected(request(",\"stream\":false,\"stream_options\":{\"include_usage\":true}")).param())
                .isEqualTo("stream_options");
    }

    @Test
    void parse_nonBooleanIncludeUsage_isRejectedNamingNestedParam() {
        assertThat(rejected(request(",\"stream\":true,\"stream_options\":{\"include_usage\":\"yes\"}")).param())
                .isEqualTo("stream_options.include_usage");
    }

    @Test
    void parse_nonJsonBody_isRejectedWithoutParam() {
        ApiException e = rejected("model=m&messages=hi");

        assertThat(e.param()).isNull();
        assertThat(e.getMessage()).contains("not valid JSON");
    }

    /**
     * A key given twice is refused naming it: parsers disagree on which value wins, so a proxy in
     * front could check one request and the gateway run another (it took the last). Comments are
     * not JSON (audit H, H-5).
     */
    @Test
    void parse_aKeyGivenTwice_orAComment_isRejected() {
        ApiException twice = rejected("{\"model\":\"nope\",\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        assertThat(twice.param()).isEqualTo("model");
        assertThat(twice.getMessage()).contains("'model' more than once");
        ApiException nested = rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"role\":\"system\",\"content\":\"hi\"}]}");
        assertThat(nested.param()).isEqualTo("messages[0].role");
        assertThat(nested.getMessage()).contains("'messages[0].role' more than once");
        ApiException comment = rejected("{\"model\":\"m\",/*c*/\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        assertThat(comment.getMessage()).contains("not valid JSON");
    }

    @Test
    void parse_truncatedJson_isRejectedWithoutParam() {
        assertThat(rejected("{\"model\":\"m\",").param()).isNull();
    }

    @Test
    void parse_jsonArrayBody_isRejectedWithoutParam() {
        ApiException e = rejected("[" + request("") + "]");

        assertThat(e.param()).isNull();
        assertThat(e.getMessage()).contains("JSON object");
    }

    @Test
    void parse_emptyBody_isRejectedWithoutParam() {
        assertThat(rejected("").param()).isNull();
    }

    @Test
    void parse_fiveStops_isRejectedNamingStop() {
        assertThat(rejected(request(",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]")).param()).isEqualTo("stop");
    }

    @Test
    void parse_emptyStopInArray_isRejectedNamingItsIndex() {
        assertThat(rejected(request(",\"stop\":[\"a\",\"\"]")).param()).isEqualTo("stop[1]");
    }

    @Test
    void parse_nonStringStopInArray_isRejectedNamingItsIndex() {
        assertThat(rejected(request(",\"stop\":[3]")).param()).isEqualTo("stop[0]");
    }

    @Test
    void parse_toolsPresent_isRejectedNamingTools() {
        assertThat(rejected(request(",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]")).param())
                .isEqualTo("tools");
    }

    @Test
    void parse_logprobsTrue_isRejectedNamingParam() {
        assertThat(rejected(request(",\"logprobs\":true")).param()).isEqualTo("logprobs");
    }

    @Test
    void parse_jsonResponseFormat_isRejectedNamingParam() {
        assertThat(rejected(request(",\"response_format\":{\"type\":\"json_object\"}")).param()).isEqualTo("response_format");
    }

    @Test
    void parse_maxTokensZero_isRejectedNamingParam() {
        assertThat(rejected(request(",\"max_tokens\":0")).param()).isEqualTo("max_tokens");
    }

    @Test
    void parse_maxCompletionTokensNegative_isRejectedNamingParam() {
        assertThat(rejected(request(",\"max_completion_tokens\":-1")).param()).isEqualTo("max_completion_tokens");
    }

    @Test
    void parse_fractionalMaxTokens_isRejectedNamingParam() {
        assertThat(rejected(request(",\"max_tokens\":2.5")).param()).isEqualTo("max_tokens");
    }

    @Test
    void parse_negativeTopK_isRejectedNamingParam() {
        assertThat(rejected(request(",\"top_k\":-1")).param()).isEqualTo("top_k");
    }

    @Test
    void parse_nullOrMissingContent_isRejectedForEveryRoleNamingTheContent() {
        for (String role : RequestLimits.ROLES) {
            ApiException nullContent = rejected(
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"" + role + "\",\"content\":null}]}");
            assertThat(nullContent.param()).isEqualTo("messages[1].content");
            assertThat(nullContent.getMessage()).contains("required");
            assertThat(rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"" + role + "\"}]}").param())
                    .isEqualTo("messages[0].content");
        }
    }

    @Test
    void parse_badRole_listsTheRolesInAFixedOrder() {
        assertThat(rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}").getMessage())
                .contains("[system, developer, user, assistant, tool]");
    }

    @Test
    void parse_optionsSetToAskForNothing_areAccepted() {
        ValidRequest valid = parse(request(",\"tool_choice\":\"none\",\"logit_bias\":{},\"modalities\":[\"text\"],"
                + "\"parallel_tool_calls\":false,\"audio\":null,\"prediction\":null,\"web_search_options\":null,\"top_logprobs\":null"));

        assertThat(valid.model()).isEqualTo("m");
        assertThat(parse(request(",\"tool_choice\":\"auto\",\"tools\":[]")).model()).isEqualTo("m");
    }

    @Test
    void parse_unsupportedOptions_areRejectedNamingEach() {
        assertThat(rejected(request(",\"tool_choice\":\"required\"")).param()).isEqualTo("tool_choice");
        assertThat(rejected(request(",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}")).param())
                .isEqualTo("tool_choice");
        assertThat(rejected(request(",\"logit_bias\":{\"50256\":-100}")).param()).isEqualTo("logit_bias");
        assertThat(rejected(request(",\"top_logprobs\":0")).param()).isEqualTo("top_logprobs");
        assertThat(rejected(request(",\"modalities\":[\"text\",\"audio\"]")).param()).isEqualTo("modalities");
        assertThat(rejected(request(",\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}")).param()).isEqualTo("audio");
        assertThat(rejected(request(",\"web_search_options\":{}")).param()).isEqualTo("web_search_options");
        assertThat(rejected(request(",\"prediction\":{\"type\":\"content\",\"content\":\"x\"}")).param())
                .isEqualTo("prediction");
    }

    @Test
    void completion_unsupportedOptions_areRejectedUnlessInert() {
        assertThat(RequestParser.completion(Buffer.buffer("{\"model\":\"m\",\"prompt\":\"p\",\"echo\":false,\"suffix\":\"\","
                + "\"best_of\":1,\"logit_bias\":{}}")).model()).isEqualTo("m");

        assertThat(rejectedCompletion("{\"model\":\"m\",\"prompt\":\"p\",\"logprobs\":0}").param()).isEqualTo("logprobs");
        assertThat(rejectedCompletion("{\"model\":\"m\",\"prompt\":\"p\",\"echo\":true}").param()).isEqualTo("echo");
        assertThat(rejectedCompletion("{\"model\":\"m\",\"prompt\":\"p\",\"suffix\":\"end\"}").param()).isEqualTo("suffix");
        assertThat(rejectedCompletion("{\"model\":\"m\",\"prompt\":\"p\",\"logit_bias\":{\"1\":5}}").param())
                .isEqualTo("logit_bias");
    }

    @Test
    void parse_surrogatePair_isAccepted() {
        String content = parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x \\ud83d\\ude00\"}]}")
                .generate("r").getChat().getMessages(0).getContent();

        assertThat(content).isEqualTo("x \uD83D\uDE00");
    }

    @Test
    void parse_unpairedSurrogate_isRejectedWhereverTextEnters() {
        ApiException content = rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x \\ud83d\"}]}");
        assertThat(content.param()).isEqualTo("messages[0].content");
        assertThat(content.getMessage()).contains("unpaired UTF-16 surrogate").contains("U+D83D at index 2");

        assertThat(rejected("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                + "[{\"type\":\"text\",\"text\":\"ok\"},{\"type\":\"text\",\"text\":\"\\ude00\\ud83d\"}]}]}").param())
                .isEqualTo("messages[0].content[1].text");
        assertThat(rejected(request(",\"stop\":\"\\udc00\"")).param()).isEqualTo("stop");
        assertThat(rejected(request(",\"stop\":[\"a\",\"b\\ud800\"]")).param()).isEqualTo("stop[1]");
        assertThat(rejectedCompletion("{\"model\":\"m\",\"prompt\":\"\\ud83dx\"}").param()).isEqualTo("prompt");
    }

    @Test
    void parse_numberPastTheParsersLengthLimit_isRejectedSayingSo() {
        ApiException e = rejected(request(",\"max_tokens\":1" + "0".repeat(2000)));

        assertThat(e.param()).isNull();
        assertThat(e.getMessage()).startsWith("The request body exceeds a JSON parser limit.")
                .contains("Number value length (2001)").doesNotContain("StreamReadConstraints").endsWith(").");
    }

    @Test
    void rejection_toJson_hasOpenAiErrorShape() {
        JsonObject error = rejected(request(",\"n\":2")).toJson().getJsonObject("error");

        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("param")).isEqualTo("n");
        assertThat(error.containsKey("code")).isTrue();
        assertThat(error.getValue("code")).isNull();
        assertThat(error.getString("message")).contains("n = 1");
    }
}
