package org.cocoonjvm.protocol;

/**
 * Ids a peer chose that nodes write as they are into text logs, metric labels and headers: a
 * worker's id, a gRPC client's {@code client_request_id}. Printable ASCII without spaces, and
 * bounded: a newline in a worker id wrote whole forged lines into the gateway's JSON access log.
 */
public final class PrintableIds {
    /** The longest worker id (a Hello's {@code worker_id}, a worker's {@code --id}). */
    public static final int MAX_WORKER_ID = 128;

    private PrintableIds() {}

    /**
     * What is wrong with {@code id}, to follow its name in a message ("must be at most 128
     * characters, got 3000"); null when nothing is. An empty id passes: whether one may be empty
     * is the caller's to say.
     */
    public static String problem(String id, int maxLength) {
        if (id.length() > maxLength) {
            return "must be at most " + maxLength + " characters, got " + id.length();
        }
        for (int i = 0; i < id.length(); i++) {
            char c = id.charAt(i);
            if (c < 0x21 || c > 0x7e) {
                return "must be printable ASCII without spaces; character " + i + " is U+" + String.format("%04X", (int) c);
            }
        }
        return null;
    }

    /**
     * Free text a peer wrote (a worker's reason for refusing a channel), as one log line may hold
     * it: control characters (newlines among them) as {@code ?}, and at most {@code maxLength}
     * characters, an ellipsis marking a cut.
     */
    public static String oneLine(String text, int maxLength) {
        StringBuilder out = new StringBuilder(Math.min(text.length(), maxLength + 1));
        for (int i = 0; i < text.length() && i < maxLength; i++) {
            char c = text.charAt(i);
            out.append(Character.isISOControl(c) ? '?' : c);
        }
        return text.length() > maxLength ? out.append('…').toString() : out.toString();
    }
}
