package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;

class StreamChunkTest {

    @Test
    void contentChunk_asTheGatewaySendsIt() throws IOException {
        StreamChunk chunk = StreamChunk.parse("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                + "\"model\":\"synthetic\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":"
                + "{\"role\":\"assistant\",\"content\":\"the \\\"cocoon\\\"\\n\"},\"logprobs\":null,\"finish_reason\":null}]}");

        assertThat(chunk).isEqualTo(new StreamChunk(false, null, -1, "the \"cocoon\"\n"));
    }

    @Test
    void usageChunk_withEmptyChoicesAndNestedCost() throws IOException {
        StreamChunk chunk = StreamChunk.parse("{\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":100,"
                + "\"cost\":{\"total_nanoton\":208,\"parts\":[1,{\"x\":[2]}]}}}");

        assertThat(chunk).isEqualTo(new StreamChunk(false, null, 100, null));
    }

    @Test
    void inBandError_codeElseType() throws IOException {
        assertThat(StreamChunk.parse("{\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"code\":\"in_band_timeout\"}}"))
                .isEqualTo(new StreamChunk(true, "in_band_timeout", -1, null));
        assertThat(StreamChunk.parse("{\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"code\":null}}"))
                .isEqualTo(new StreamChunk(true, "server_error", -1, null));
        assertThat(StreamChunk.parse("{\"error\":\"text\"}")).isEqualTo(new StreamChunk(true, null, -1, null));
    }

    @Test
    void onlyTheFirstChoiceCounts() throws IOException {
        assertThat(StreamChunk.parse("{\"choices\":[{\"delta\":{\"content\":\"a\"}},{\"delta\":{\"content\":\"b\"}}]}").content())
                .isEqualTo("a");
        assertThat(StreamChunk.parse("{\"choices\":[7,{\"delta\":{\"content\":\"b\"}}]}").content()).isNull();
    }

    @Test
    void notOneJsonObject_isRefused() {
        for (String bad : new String[] {"", "[]", "{\"choices\":[", "{\"a\":1} {}", "{\"a\":1}x", "not json"}) {
            assertThatThrownBy(() -> StreamChunk.parse(bad)).as(bad).isInstanceOf(IOException.class);
        }
    }
}
