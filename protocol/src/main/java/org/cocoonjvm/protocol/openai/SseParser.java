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
 * the load driver's largest cost after JSON (a JFR profile at 64 streams). It reads each buffer
 * through a small window of its own rather than copying it whole, and a {@link BytesHandler} takes
 * each event's data as bytes, not as a String: the load driver reads every token's event in the
 * same process as the gateway it measures, and the garbage of one copy and one String per token
 * shortened the time between the young collections that pause all of them.
 */
public final class SseParser implements Handler<Buffer> {
    private static final byte CR = '\r';
    private static final byte LF = '\n';
    private static final byte[] DATA = {'d', 'a', 't', 'a'};
    /** Bytes copied out of a buffer at a time: what a parser keeps however large a read is. */
    private static final int WINDOW = 512;

    /**
     * Takes an event's data, UTF-8, as bytes that are valid only during the call: the parser reuses
     * the array for the next event.
     */
    @FunctionalInterface
    public interface BytesHandler {
        void handle(byte[] bytes, int offset, int length);
    }

    private final BytesHandler onData;
    private final int maxEventBytes;
    private final byte[] window = new byte[WINDOW];
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

    /** Each event's data decoded to a String. */
    public SseParser(int maxEventBytes, Handler<String> onData) {
        this(maxEventBytes, (bytes, offset, length) -> onData.handle(new String(bytes, offset, length, StandardCharsets.UTF_8)));
    }

    public SseParser(int maxEventBytes, BytesHandler onData) {
        this.maxEventBytes = maxEventBytes;
        this.onData = onData;
    }

    @Override
    public void handle(Buffer buffer) {
        int length = buffer.length();
        for (int from = 0; from < length; from += WINDOW) {
            int to = Math.min(length, from + WINDOW);
            buffer.getBytes(from, to, window, 0);
            scan(window, to - from);
        }
    }

    /** A line that runs past the window's end waits in {@link #partial}, as one past a read's end does. */
    private void scan(byte[] bytes, int end) {
        int lineStart = 0;
        for (int i = 0; i < end; i++) {
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
        if (lineStart < end) {
            keepPartial(bytes, lineStart, end);
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
        int length = dataLength - 1;
        dataLength = 0;
        hasData = false;
        eventBytes = 0;
        if (any) {
            onData.handle(data, 0, length);
        }
    }
}
