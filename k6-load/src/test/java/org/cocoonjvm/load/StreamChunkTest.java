package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
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

    @Test
    void parse_somethingAfterTheObject_failsAsJsonParseWould() {
        assertThatThrownBy(() -> StreamChunk.parse("{\"choices\":[]} {}")).isInstanceOf(IOException.class);
        assertThatThrownBy(() -> StreamChunk.parse("{\"choices\":[]}]")).isInstanceOf(IOException.class);
    }

    private static final List<String> CHUNKS = List.of(
            "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
                    + "\"delta\":{\"content\":\"Hé ✓ 😀\"},\"finish_reason\":null}]}",
            "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":17,\"cost\":{\"total_nanoton\":60}}}",
            "{\"choices\":[{\"delta\":{\"content\":\"\"}},[1,{\"a\":[2]}],3],\"usage\":{\"completion_tokens\":2}}",
            "{\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"code\":503}}",
            "{\"error\":{\"code\":0,\"type\":\"\"}}",
            "{\"error\":\"\",\"usage\":null}",
            "  {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n ",
            "{\"choices\":[]} {}", "{\"choices\":[]} 0", "{\"choices\":[]} \"x", "{\"choices\":[]}\t\r\n", "[1]", "{\"choices\":[{\"delta\":", "not json", "", " ", "5", "\"s\"", "{}", "{\"a\":1}}",
            "{\"usage\":{\"completion_tokens\":99999999999999999999999}}");

    /** The same outcome from the fed reader and from {@link StreamChunk#parse(String)}: a chunk alike, or both refusing. */
    private static void assertReadAlike(StreamChunk.Reader reader, byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        Object expected;
        try {
            expected = StreamChunk.parse(text);
        } catch (IOException e) {
            expected = "refused";
        }
        // At an offset in a larger array, as the SSE parser hands them.
        byte[] framed = new byte[bytes.length + 7];
        System.arraycopy(bytes, 0, framed, 3, bytes.length);
        Object actual;
        try {
            actual = reader.read(framed, 3, bytes.length);
        } catch (IOException e) {
            actual = "refused";
        }
        assertThat(actual).as(text).isEqualTo(expected);
    }

    @Test
    void reader_oneParserFedEveryChunk_readsEachAsParseDoes() {
        try (StreamChunk.Reader reader = new StreamChunk.Reader()) {
            for (int round = 0; round < 3; round++) {
                for (String chunk : CHUNKS) {
                    assertReadAlike(reader, chunk.getBytes(StandardCharsets.UTF_8));
                }
            }
        }
    }

    /** Bytes that are not UTF-8: the fed parser refuses them, and the chunk is read as parse reads its repaired text. */
    @Test
    void reader_bytesThatAreNotUtf8_areReadAsTheirRepairedText() throws IOException {
        byte[] bytes = "{\"choices\":[{\"delta\":{\"content\":\"a?\"}}]}".getBytes(StandardCharsets.UTF_8);
        bytes[bytes.length - 7] = (byte) 0xC3;
        try (StreamChunk.Reader reader = new StreamChunk.Reader()) {
            assertThat(reader.read(bytes, 0, bytes.length)).isEqualTo(new StreamChunk(null, -1, true));
            assertReadAlike(reader, CHUNKS.getFirst().getBytes(StandardCharsets.UTF_8));
        }
    }

    /** Chunks cut short, with a byte changed or with bytes added, one reader for all: read alike, or refused by both. */
    @Test
    void reader_brokenChunksAmongGoodOnes_readAsParseReadsThem() {
        Random random = new Random(11);
        try (StreamChunk.Reader reader = new StreamChunk.Reader()) {
            for (int i = 0; i < 20_000; i++) {
                byte[] bytes = CHUNKS.get(random.nextInt(CHUNKS.size())).getBytes(StandardCharsets.UTF_8);
                switch (random.nextInt(4)) {
                    case 0 -> bytes = Arrays.copyOf(bytes, random.nextInt(bytes.length + 1));
                    case 1 -> {
                        if (bytes.length > 0) {
                            bytes[random.nextInt(bytes.length)] = (byte) random.nextInt(256);
                        }
                    }
                    case 2 -> {
                        String noise = " }]{x\"0\n";
                        byte[] more = Arrays.copyOf(bytes, bytes.length + 1 + random.nextInt(3));
                        for (int j = bytes.length; j < more.length; j++) {
                            more[j] = (byte) noise.charAt(random.nextInt(noise.length()));
                        }
                        bytes = more;
                    }
                    default -> { }
                }
                assertReadAlike(reader, bytes);
            }
        }
    }

    /**
     * The point of the reader: a well-formed chunk costs no parser of its own. Counted in bytes
     * allocated, not time: a parser and a String per chunk were ~1 kB, the fed parser's location and
     * the chunk record some tens of bytes.
     */
    @Test
    void reader_wellFormedChunks_allocateNoParserEach() throws IOException {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        byte[] chunk = CHUNKS.getFirst().getBytes(StandardCharsets.UTF_8);
        try (StreamChunk.Reader reader = new StreamChunk.Reader()) {
            for (int i = 0; i < 20_000; i++) {
                reader.read(chunk, 0, chunk.length);
            }
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 10_000; i++) {
                reader.read(chunk, 0, chunk.length);
            }
            long perChunk = (threads.getCurrentThreadAllocatedBytes() - before) / 10_000;

            assertThat(perChunk).isLessThan(300);
        }
    }
}
