package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SseParserTest {
    private final List<String> events = new ArrayList<>();
    private final SseParser parser = new SseParser(64, events::add);

    private void feed(String... reads) {
        for (String read : reads) {
            parser.handle(Buffer.buffer(read.getBytes(StandardCharsets.UTF_8)));
        }
    }

    /** The stream fed once whole and once a byte at a time: read boundaries never change the events. */
    private List<String> parsedWholeAndByteByByte(String stream) {
        List<String> whole = new ArrayList<>();
        new SseParser(1 << 10, whole::add).handle(Buffer.buffer(stream.getBytes(StandardCharsets.UTF_8)));
        List<String> bytewise = new ArrayList<>();
        SseParser byByte = new SseParser(1 << 10, bytewise::add);
        for (byte b : stream.getBytes(StandardCharsets.UTF_8)) {
            byByte.handle(Buffer.buffer(new byte[] {b}));
        }
        assertThat(bytewise).as("byte by byte").isEqualTo(whole);
        return whole;
    }

    @Test
    void handle_openAiStream_givesEachEventsDataAndSkipsKeepAlives() {
        feed(": keep-alive\n\n", "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n", "data: [DONE]\n\n");

        assertThat(events).containsExactly("{\"a\":1}", "{\"b\":2}", "[DONE]");
    }

    @Test
    void handle_eventSplitAcrossReads_isDeliveredOnceWhole() {
        feed("da", "ta: hel", "lo\n", "\n");

        assertThat(events).containsExactly("hello");
    }

    @Test
    void handle_everyLineEnding_endsLinesAndEventsAlike() {
        assertThat(parsedWholeAndByteByByte("data: lf\n\ndata: crlf\r\n\r\ndata: cr\r\rdata: mixed\r\n\n"))
                .containsExactly("lf", "crlf", "cr", "mixed");
    }

    @Test
    void handle_crlfSplitBetweenReads_isOneLineEndNotABlankLine() {
        feed("data: a\r", "\ndata: b\r\n\r\n");

        assertThat(events).containsExactly("a\nb");
    }

    @Test
    void handle_severalDataLines_areJoinedWithLineFeeds() {
        assertThat(parsedWholeAndByteByByte("data: one\ndata:two\ndata:  three\n\n")).containsExactly("one\ntwo\n three");
    }

    @Test
    void handle_dataFieldWithoutColonOrValue_isAnEmptyLine() {
        assertThat(parsedWholeAndByteByByte("data\n\ndata:\n\ndata\ndata: x\n\n")).containsExactly("", "", "\nx");
    }

    @Test
    void handle_otherFieldsCommentsAndLookalikes_areNotData() {
        assertThat(parsedWholeAndByteByByte("event: ping\nid: 7\nretry: 10\n: data: no\ndatum: no\ndatax: no\n\n"
                + "event: message\ndata: yes\n\n")).containsExactly("yes");
    }

    @Test
    void handle_multiByteUtf8SplitAcrossReads_isDecodedWhole() {
        byte[] bytes = "data: héllo ✓ 😀\n\n".getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < bytes.length; i++) {
            parser.handle(Buffer.buffer(Arrays.copyOfRange(bytes, i, i + 1)));
        }

        assertThat(events).containsExactly("héllo ✓ 😀");
    }

    @Test
    void handle_eventLargerThanTheLimit_failsInsteadOfGrowing() {
        feed("data: " + "x".repeat(40) + "\n");

        assertThatThrownBy(() -> feed("data: " + "y".repeat(40)))
                .isInstanceOf(IllegalStateException.class).hasMessage("a server-sent event exceeds 64 bytes");
    }

    @Test
    void handle_unfinishedLineLargerThanTheLimit_failsBeforeItsEnd() {
        assertThatThrownBy(() -> feed("data: " + "x".repeat(40), "y".repeat(40)))
                .isInstanceOf(IllegalStateException.class).hasMessage("a server-sent event exceeds 64 bytes");
    }

    @Test
    void handle_manyEventsEachUnderTheLimit_neverTripsIt() {
        for (int i = 0; i < 100; i++) {
            feed("data: " + "x".repeat(50) + "\n\n: keep-alive\n\n");
        }

        assertThat(events).hasSize(100);
    }

    @Test
    void handle_aHandlerThatThrows_leavesTheParserReadyForTheNextEvent() {
        List<String> seen = new ArrayList<>();
        SseParser failing = new SseParser(64, data -> {
            seen.add(data);
            if (data.equals("bad")) {
                throw new IllegalArgumentException("bad");
            }
        });

        assertThatThrownBy(() -> failing.handle(Buffer.buffer("data: bad\n\n"))).hasMessage("bad");
        failing.handle(Buffer.buffer("data: good\n\n"));

        assertThat(seen).containsExactly("bad", "good");
    }

    /**
     * Reads past the parser's copy window: events larger than it, and lines and CRLFs lying across
     * its edges, come out as they do fed a byte at a time.
     */
    @Test
    void handle_readsLargerThanTheCopyWindow_giveTheSameEvents() {
        StringBuilder stream = new StringBuilder();
        List<String> expected = new ArrayList<>();
        Random random = new Random(7);
        for (int i = 0; i < 60; i++) {
            String value = "é".repeat(random.nextInt(3)) + "x".repeat(random.nextInt(900));
            stream.append(i % 3 == 0 ? ": keep-alive\r\n\r\n" : "").append("data: ").append(value).append(i % 2 == 0 ? "\r\n\r\n" : "\n\n");
            expected.add(value);
        }

        assertThat(parsedWholeAndByteByByte(stream.toString())).isEqualTo(expected);
    }

    @Test
    void handle_bytesHandler_getsEachEventsDataWithoutTheLastLineFeed() {
        List<String> seen = new ArrayList<>();
        SseParser bytes = new SseParser(1 << 10, (data, offset, length) ->
                seen.add(new String(data, offset, length, StandardCharsets.UTF_8)));

        bytes.handle(Buffer.buffer("data: héllo\n\ndata: a\ndata: b\n\ndata\n\n".getBytes(StandardCharsets.UTF_8)));

        assertThat(seen).containsExactly("héllo", "a\nb", "");
    }
}
