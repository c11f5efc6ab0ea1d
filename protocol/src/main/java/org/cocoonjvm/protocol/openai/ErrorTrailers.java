package org.cocoonjvm.protocol.openai;

import io.netty.handler.codec.http.QueryStringDecoder;
import io.vertx.core.MultiMap;
import io.vertx.grpc.client.GrpcClientResponse;
import java.nio.charset.StandardCharsets;

/**
 * An {@link ApiException}'s details as gRPC trailers, for what a status and its message cannot
 * say: the stable code ({@code context_length_exceeded}), the field at fault and when to retry.
 * The gateway's {@code Inference} API sends them to its clients, and a worker to its gateway, so
 * that a refusal keeps its code and param on the way through, and so that a worker's own refusal
 * can be told from one that gRPC made for it (an oversized message is {@code RESOURCE_EXHAUSTED}
 * with no trailers, like a busy worker's status).
 */
public final class ErrorTrailers {
    public static final String CODE = "cocoon-error";
    public static final String PARAM = "cocoon-error-param";
    public static final String RETRY_AFTER = "retry-after";
    private static final String MESSAGE = "grpc-message";
    private static final char[] HEX = "0123456789ABCDEF".toCharArray();
    /** The most a status message takes, encoded: far under any peer's header-list limit with the other trailers. */
    static final int MAX_MESSAGE_CHARS = 2048;
    private static final String ELLIPSIS = "%E2%80%A6";

    private ErrorTrailers() {}

    /**
     * Sets the error's trailers, its status message included; call before ending the response.
     * The message is encoded here, as the gRPC spec asks (only {@code %} and bytes outside printable
     * ASCII): Vert.x's own encoding, which a message already set is spared, also escapes spaces and
     * punctuation, and gRPC's JavaScript client shows those escapes to its users as they are.
     */
    public static void write(MultiMap trailers, ApiException error) {
        trailers.set(MESSAGE, statusMessage(error.getMessage()));
        trailers.set(CODE, error.kind().stableCode());
        if (error.param() != null) {
            trailers.set(PARAM, error.param());
        }
        if (error.retryAfterSeconds() > 0) {
            trailers.set(RETRY_AFTER, Integer.toString(error.retryAfterSeconds()));
        }
    }

    /**
     * {@code message} as gRPC's {@code grpc-message}: printable ASCII as it is, the rest (and
     * {@code %}) as the percent-encoded bytes of its UTF-8. Nothing more: {@code @grpc/grpc-js}
     * decodes with JavaScript's {@code decodeURI}, which leaves an escaped {@code +} (or any other
     * reserved character) escaped, so its users read {@code U%2B0020}. Vert.x's own client decodes
     * the message as a URL form and reads a {@code +} as a space: this project reads it with
     * {@link #message}. Cut, at a character, to {@link #MAX_MESSAGE_CHARS} encoded and
     * marked with an ellipsis: a message may echo what a client sent (a chat template's
     * {@code raise_exception} quoting a message), and a peer's HTTP/2 client refuses trailers past
     * its header-list limit (Netty's 8 KiB), turning a refusal into a broken stream.
     */
    static String statusMessage(String message) {
        StringBuilder out = new StringBuilder(Math.min(message.length(), MAX_MESSAGE_CHARS) + 16);
        int fitsWithEllipsis = 0;  // the longest whole-character prefix that leaves room for the ellipsis
        for (int i = 0; i < message.length(); ) {
            int codePoint = message.codePointAt(i);
            for (byte b : new String(Character.toChars(codePoint)).getBytes(StandardCharsets.UTF_8)) {
                if (b >= 0x20 && b <= 0x7e && b != '%') {
                    out.append((char) b);
                } else {
                    out.append('%').append(HEX[(b >> 4) & 0xf]).append(HEX[b & 0xf]);
                }
            }
            i += Character.charCount(codePoint);
            if (out.length() > MAX_MESSAGE_CHARS) {
                out.setLength(fitsWithEllipsis);
                return out.append(ELLIPSIS).toString();
            }
            if (out.length() <= MAX_MESSAGE_CHARS - ELLIPSIS.length()) {
                fitsWithEllipsis = out.length();
            }
        }
        return out.toString();
    }

    /** The peer's status message, decoded as the gRPC spec says ({@link #decode}); null when it sent none. */
    public static String message(GrpcClientResponse<?, ?> response) {
        String sent = read(response, MESSAGE);
        return sent == null ? null : decode(sent);
    }

    /**
     * A {@code grpc-message} as sent, decoded: percent-escapes only, a {@code +} is itself (Vert.x's
     * {@code statusMessage()} makes it a space). A malformed escape leaves the message as it came,
     * which the spec allows, rather than losing it.
     */
    static String decode(String sent) {
        try {
            return QueryStringDecoder.decodeComponent(sent.replace("+", "%2B"), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            return sent;
        }
    }

    /** The kind the peer named; null when it named none (or one this side does not know). */
    public static ErrorKind kind(GrpcClientResponse<?, ?> response) {
        String code = read(response, CODE);
        return code == null ? null : ErrorKind.ofStableCode(code);
    }

    public static String param(GrpcClientResponse<?, ?> response) {
        return read(response, PARAM);
    }

    /** A call refused before any message is answered trailers-only: its trailers come as headers. */
    private static String read(GrpcClientResponse<?, ?> response, String name) {
        String value = response.trailers() == null ? null : response.trailers().get(name);
        return value != null ? value : response.headers().get(name);
    }
}
