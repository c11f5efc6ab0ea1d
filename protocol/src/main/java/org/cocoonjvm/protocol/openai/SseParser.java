package org.cocoonjvm.protocol.openai;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Splits a Server-Sent Events byte stream into events, whatever the transport's read boundaries,
 * and hands each event's {@code data} to a handler, as the WHATWG event-stream rules read it: lines
 * end at CRLF, LF or a lone CR; a blank line ends an event; {@code data} lines are joined with LF,
 * one space after the colon dropped; comment lines (keep-alives) and other fields are skipped; an
 * event with no {@code data} line is no event. An event larger than {@code maxEventBytes} fails the
 * stream rather than growing memory without bound.
 *
 * <p>It works on bytes and decodes each event's data once: the String-based version it replaced
 * decoded every read, searched it twice per event and split each event into line Strings, and was
 * the load driver's largest cost after JSON (a JFR profile at 64 streams).
 */
public final class SseParser implements Handler<Buffer> {
    private static final byte CR = '\r';
    private static final byte LF = '\n';
    private static final byte[] DATA = {'d', 'a', 't', 'a'};

    private final Handler<String> onData;
    private final int maxEventBytes;
    /** A line the last read ended inside of. */
    private byte[] partial = new byte[128];
    private int partialLength;
    /** The event's data lines so far, each value followed by LF. */
    private byte[] data = new byte[256];
    private int dataLength;
    private boolean hasData;
    /** Bytes of the event's finished lines, line ends excluded: with {@link #partial}, what {@code maxEventBytes} bounds. */
    private int eventBytes;
    /** The last line ended at a CR, so an LF first thing is that line's end, not a blank line. */
    private boolean afterCr;

    public SseParser(int maxEventBytes, Handler<String> onData) {
        this.maxEventBytes = maxEventBytes;
        this.onData = onData;
    }

    @Override
    public void handle(Buffer buffer) {
        byte[] bytes = buffer.getBytes();
        int lineStart = 0;
        for (int i = 0; i < bytes.length; i++) {
            byte b = bytes[i];
            if (b != LF && b != CR) {
                continue;
            }
            boolean crlfTail = afterCr && b == LF && i == lineStart && partialLength == 0;
            afterCr = b == CR;
            if (!crlfTail) {
                if (partialLength > 0) {
                    keepPartial(bytes, lineStart, i);
                    int length = partialLength;
                    partialLength = 0;
                    line(partial, 0, length);
                } else {
                    line(bytes, lineStart, i);
                }
            }
            lineStart = i + 1;
        }
        if (lineStart < bytes.length) {
            keepPartial(bytes, lineStart, bytes.length);
        }
    }

    private void keepPartial(byte[] bytes, int from, int to) {
        int length = to - from;
        checkSize(length);
        if (partialLength + length > partial.length) {
            partial = Arrays.copyOf(partial, Math.max(2 * partial.length, partialLength + length));
        }
        System.arraycopy(bytes, from, partial, partialLength, length);
        partialLength += length;
    }

    private void line(byte[] bytes, int from, int to) {
        if (from == to) {
            dispatch();
            return;
        }
        checkSize(to - from);
        eventBytes += to - from;
        if (bytes[from] == ':' || !isData(bytes, from, to)) {
            return;
        }
        int value = Math.min(from + DATA.length + 1, to);
        if (value < to && bytes[value] == ' ') {
            value++;
        }
        appendData(bytes, value, to);
    }

    /** The field is {@code data}: the name alone, or followed by a colon. */
    private static boolean isData(byte[] bytes, int from, int to) {
        int nameEnd = from + DATA.length;
        return nameEnd <= to && Arrays.equals(bytes, from, nameEnd, DATA, 0, DATA.length)
                && (nameEnd == to || bytes[nameEnd] == ':');
    }

    private void appendData(byte[] bytes, int from, int to) {
        int length = to - from;
        if (dataLength + length + 1 > data.length) {
            data = Arrays.copyOf(data, Math.max(2 * data.length, dataLength + length + 1));
        }
        System.arraycopy(bytes, from, data, dataLength, length);
        dataLength += length;
        data[dataLength++] = LF;
        hasData = true;
    }

    private void checkSize(int more) {
        if (eventBytes + partialLength + more > maxEventBytes) {
            throw new IllegalStateException("a server-sent event exceeds " + maxEventBytes + " bytes");
        }
    }

    private void dispatch() {
        boolean any = hasData;
        // The last data line's LF is not part of the data.
        String value = any ? new String(data, 0, dataLength - 1, StandardCharsets.UTF_8) : null;
        dataLength = 0;
        hasData = false;
        eventBytes = 0;
        if (any) {
            onData.handle(value);
        }
    }
}
