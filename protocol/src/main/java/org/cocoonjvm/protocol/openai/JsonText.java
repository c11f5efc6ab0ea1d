package org.cocoonjvm.protocol.openai;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;

/**
 * Writes JSON string literals, as text or straight as UTF-8 bytes. Stream chunks (and the
 * gateway's access log lines) are built by hand because they are written once per token or
 * request on the hottest paths in the gateway, and a tree-building encoder costs several times more.
 * Both forms copy runs of plain characters in bulk: most tokens need no escaping at all.
 */
public final class JsonText {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    /** Most bytes one character can take in {@link #writeString}: a {@code \}{@code uXXXX} escape. */
    public static final int MOST_BYTES_PER_CHAR = 6;

    private JsonText() {}

    public static StringBuilder appendString(StringBuilder out, String s) {
        out.append('"');
        int plainFrom = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (plain(c)) {
                continue;
            }
            out.append(s, plainFrom, i).append(escape(c));
            plainFrom = i + 1;
        }
        return out.append(s, plainFrom, s.length()).append('"');
    }

    /** The literal as UTF-8; {@code out} should have room for 2 + {@link #MOST_BYTES_PER_CHAR} bytes a character. */
    public static void writeString(ByteBuf out, String s) {
        out.writeByte('"');
        int plainFrom = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (plain(c)) {
                continue;
            }
            if (i > plainFrom) {
                ByteBufUtil.writeUtf8(out, s, plainFrom, i);
            }
            ByteBufUtil.writeAscii(out, escape(c));
            plainFrom = i + 1;
        }
        if (plainFrom < s.length()) {
            ByteBufUtil.writeUtf8(out, s, plainFrom, s.length());
        }
        out.writeByte('"');
    }

    /** U+2028/2029 are legal JSON but break JavaScript parsers that eval lines. */
    private static boolean plain(char c) {
        return c >= 0x20 && c != '"' && c != '\\' && c != '\u2028' && c != '\u2029';
    }

    private static String escape(char c) {
        return switch (c) {
            case '"' -> "\\\"";
            case '\\' -> "\\\\";
            case '\n' -> "\\n";
            case '\r' -> "\\r";
            case '\t' -> "\\t";
            default -> new String(new char[] {'\\', 'u', HEX[c >> 12 & 15], HEX[c >> 8 & 15], HEX[c >> 4 & 15], HEX[c & 15]});
        };
    }
}
