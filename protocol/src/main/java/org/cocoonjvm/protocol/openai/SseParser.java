package org.cocoonjvm.protocol.openai;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;

/**
 * Splits a Server-Sent Events byte stream into events on blank lines, whatever the transport's
 * read boundaries, and hands each event's {@code data} to a handler. Comment lines (keep-alives)
 * are dropped. An event larger than {@code maxEventBytes} fails the stream rather than growing
 * memory without bound.
 */
public final class SseParser implements Handler<Buffer> {
    private final Handler<String> onData;
    private final int maxEventBytes;
    private final StringBuilder pending = new StringBuilder();

    public SseParser(int maxEventBytes, Handler<String> onData) {
        this.maxEventBytes = maxEventBytes;
        this.onData = onData;
    }

    @Override
    public void handle(Buffer buffer) {
        pending.append(buffer.toString());
        int start = 0;
        for (int end; (end = nextBoundary(start)) >= 0; ) {
            event(pending.substring(start, end));
            start = end + (pending.charAt(end) == '\r' ? 4 : 2);
        }
        pending.delete(0, start);
        if (pending.length() > maxEventBytes) {
            throw new IllegalStateException("a server-sent event exceeds " + maxEventBytes + " bytes");
        }
    }

    private int nextBoundary(int from) {
        int lf = pending.indexOf("\n\n", from);
        int crlf = pending.indexOf("\r\n\r\n", from);
        return lf < 0 ? crlf : crlf < 0 ? lf : Math.min(lf, crlf);
    }

    private void event(String block) {
        StringBuilder data = null;
        // lines(), not a regex split: it ends lines at CRLF, LF or a lone CR, as SSE does, and it
        // runs per event on the load driver and the forwarding engine.
        for (String line : (Iterable<String>) block.lines()::iterator) {
            if (line.startsWith("data:")) {
                String value = line.length() > 5 && line.charAt(5) == ' ' ? line.substring(6) : line.substring(5);
                data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
            }
        }
        if (data != null) {
            onData.handle(data.toString());
        }
    }
}
