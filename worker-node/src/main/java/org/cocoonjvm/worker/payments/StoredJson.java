package org.cocoonjvm.worker.payments;

/** What is wrong with a stored JSON file, in a line: Jackson's own message runs on with its source location. */
final class StoredJson {
    private StoredJson() {}

    static String problem(Throwable e) {
        String message = e.getMessage() == null ? e.toString() : e.getMessage();
        // "Failed to decode:Unexpected end-of-input: ... \n at [Source: REDACTED ...; line: 1, column: 27]"
        message = message.replaceFirst("^Failed to decode: ?", "")
                .replaceAll("\\s*\\(start marker at \\[Source:[^\\]]*\\]\\)", "");
        int at = message.indexOf("\n at [Source");
        if (at < 0) {
            at = message.indexOf(" at [Source");
        }
        if (at >= 0) {
            message = message.substring(0, at);
        }
        int newline = message.indexOf('\n');
        return (newline >= 0 ? message.substring(0, newline) : message).strip();
    }
}
