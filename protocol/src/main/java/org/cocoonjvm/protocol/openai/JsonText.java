package org.cocoonjvm.protocol.openai;

/**
 * Appends JSON string literals. Stream chunks (and the gateway's access log lines) are built by
 * hand because they are written once per token or request on the hottest paths in the gateway,
 * and a tree-building encoder costs several times more.
 */
public final class JsonText {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private JsonText() {}

    /** Copies runs of plain characters in bulk: most tokens need no escaping at all. */
    public static StringBuilder appendString(StringBuilder out, String s) {
        out.append('"');
        int plainFrom = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            // U+2028/2029 are legal JSON but break JavaScript parsers that eval lines.
            if (c >= 0x20 && c != '"' && c != '\\' && c != '\u2028' && c != '\u2029') {
                continue;
            }
            out.append(s, plainFrom, i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> out.append("\\u").append(HEX[c >> 12 & 15]).append(HEX[c >> 8 & 15])
                        .append(HEX[c >> 4 & 15]).append(HEX[c & 15]);
            }
            plainFrom = i + 1;
        }
        return out.append(s, plainFrom, s.length()).append('"');
    }
}
