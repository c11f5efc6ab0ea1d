package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;

class StreamChunkTest {

    @Test
    void parse_contentChunk_hasContentAndNoUsage() throws IOException {
        StreamChunk chunk = StreamChunk.parse("{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
                + "\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
                + "\"logprobs\":null,\"finish_reason\":null}]}");

        assertThat(chunk).isEqualTo(new StreamChunk(null, -1, true));
    }

    @Test
    void parse_usageChunkAfterTheChoices_hasTheCompletionTokens() throws IOException {
        StreamChunk chunk = StreamChunk.parse("{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,"
                + "\"completion_tokens\":17,\"total_tokens\":21,\"cost\":{\"total_nanoton\":60}}}");

        assertThat(chunk).isEqualTo(new StreamChunk(null, 17, false));
    }

    @Test
    void parse_emptyContentRoleOnlyOrFinishChunks_haveNoContent() throws IOException {
        assertThat(StreamChunk.parse("{\"choices\":[{\"delta\":{\"content\":\"\"}}]}").hasContent()).isFalse();
        assertThat(StreamChunk.parse("{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}").hasContent()).isFalse();
        assertThat(StreamChunk.parse("{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}").hasContent()).isFalse();
        assertThat(StreamChunk.parse("{\"choices\":[{\"delta\":{\"content\":null}}]}").hasContent()).isFalse();
    }

    @Test
    void parse_onlyTheFirstChoiceCounts_andTheRestIsSkipped() throws IOException {
        StreamChunk chunk = StreamChunk.parse("{\"choices\":[{\"index\":0,\"delta\":{}},{\"index\":1,\"delta\":{\"content\":\"x\"}},"
                + "[1,{\"a\":[2]}],3],\"usage\":{\"completion_tokens\":2}}");

        assertThat(chunk).isEqualTo(new StreamChunk(null, 2, false));
    }

    @Test
    void parse_errorEvent_givesItsCodeElseItsTypeElseUnknown() throws IOException {
        assertThat(StreamChunk.parse("{\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"code\":\"timeout\"}}").errorCode())
                .isEqualTo("timeout");
        assertThat(StreamChunk.parse("{\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"code\":null}}").errorCode())
                .isEqualTo("server_error");
        assertThat(StreamChunk.parse("{\"error\":\"broken\"}").errorCode()).isEqualTo("unknown");
    }

    /** The kinds lib/cocoon.js gives the same events: {@code chunk.error.code || chunk.error.type || "unknown"}. */
    @Test
    void parse_errorEvent_isReadAsTheK6ScriptReadsIt() throws IOException {
        assertThat(StreamChunk.parse("{\"error\":{\"type\":\"server_error\",\"code\":503}}").errorCode()).isEqualTo("503");
        assertThat(StreamChunk.parse("{\"error\":{\"type\":\"server_error\",\"code\":\"\"}}").errorCode()).isEqualTo("server_error");
        assertThat(StreamChunk.parse("{\"error\":{\"code\":0}}").errorCode()).isEqualTo("unknown");
        assertThat(StreamChunk.parse("{\"error\":null,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"))
                .isEqualTo(new StreamChunk(null, -1, true));
        assertThat(StreamChunk.parse("{\"error\":false}").errorCode()).isNull();
        assertThat(StreamChunk.parse("{\"error\":\"\"}").errorCode()).isNull();
    }

    @Test
    void parse_fieldsOfTheWrongShape_areSkipped() throws IOException {
        assertThat(StreamChunk.parse("{\"usage\":null,\"choices\":{\"delta\":{\"content\":\"x\"}}}"))
                .isEqualTo(new StreamChunk(null, -1, false));
        assertThat(StreamChunk.parse("{\"usage\":{\"completion_tokens\":\"7\"}}").completionTokens()).isZero();
    }

    @Test
    void parse_notAJsonObject_fails() {
        assertThatThrownBy(() -> StreamChunk.parse("[1]")).isInstanceOf(IOException.class);
        assertThatThrownBy(() -> StreamChunk.parse("{\"choices\":[{\"delta\":")).isInstanceOf(IOException.class);
        assertThatThrownBy(() -> StreamChunk.parse("not json")).isInstanceOf(IOException.class);
    }
}
