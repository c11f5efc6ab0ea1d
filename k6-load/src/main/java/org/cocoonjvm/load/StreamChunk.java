package org.cocoonjvm.load;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.async.ByteArrayFeeder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * What the load driver reads from one streamed chunk ({@code chat.completion.chunk} or an error
 * event): whether it is an error and its code, the usage's completion tokens, and whether its first
 * choice's delta carries content. Read with Jackson's streaming parser, skipping everything else:
 * building a {@code JsonObject} of every chunk was a third of the load driver's CPU at 64 streams
 * (a JFR profile), on the cores the gateway and the worker it measures share.
 *
 * @param errorCode        the error's {@code code} (a string or a number), else its {@code type}, else
 *                         {@code unknown}; null if not an error. As lib/cocoon.js reads it
 *                         ({@code chunk.error.code || chunk.error.type || "unknown"}), so both tools
 *                         give an event the same kind: an {@code error} that JavaScript finds false
 *                         ({@code null}, {@code false}, {@code 0}, {@code ""}) is no error, and
 *                         neither is an empty or zero code.
 * @param completionTokens the usage's {@code completion_tokens} (0 if it has none); -1 without a usage object
 * @param hasContent       the first choice's {@code delta.content} is a non-empty string
 */
record StreamChunk(String errorCode, long completionTokens, boolean hasContent) {
    private static final JsonFactory JSON = new JsonFactory();

    /**
     * @throws IOException if {@code json} is not one JSON object, as {@code JSON.parse} in the k6
     *                     scripts would refuse it (so also if anything but whitespace follows it)
     */
    static StreamChunk parse(String json) throws IOException {
        try (JsonParser p = JSON.createParser(json)) {
            StreamChunk chunk = object(p);
            if (p.nextToken() != null) {
                throw new JsonParseException(p, "a chunk is one JSON object, and something follows it");
            }
            return chunk;
        }
    }

    /** Reads one object from the parser's next token; leaves the parser at its end. */
    private static StreamChunk object(JsonParser p) throws IOException {
        if (p.nextToken() != JsonToken.START_OBJECT) {
            throw new JsonParseException(p, "a chunk is a JSON object");
        }
        String error = null;
        long completionTokens = -1;
        boolean content = false;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            if (field.equals("error")) {
                error = truthy(p, value) ? errorCode(p, value) : null;
            } else if (field.equals("usage") && value == JsonToken.START_OBJECT) {
                completionTokens = completionTokens(p);
            } else if (field.equals("choices") && value == JsonToken.START_ARRAY) {
                content = firstDeltaHasContent(p);
            } else {
                p.skipChildren();
            }
        }
        return new StreamChunk(error, completionTokens, content);
    }

    /**
     * One stream's chunks, read as bytes by one non-blocking parser fed event after event, so a
     * chunk costs no parser, no context objects and no String: a new parser per chunk was ~800
     * bytes of garbage per token in the load driver, which shares the heap and its pauses with the
     * gateway it measures. What the fed parser does not read cleanly as one whole object (not JSON,
     * cut short, followed by more, bytes that are not UTF-8) goes to {@link #parse(String)}, which
     * decides as it always has, and the next chunk gets a fresh parser. Owned by the stream's event
     * loop; {@link #close()} when the stream ends.
     */
    static final class Reader implements AutoCloseable {
        private JsonParser parser;
        /** Bytes fed to {@link #parser} before this chunk: where its offsets for this chunk start. */
        private long fed;

        /** @throws IOException as {@link #parse(String)} for the same text */
        StreamChunk read(byte[] bytes, int offset, int length) throws IOException {
            if (parser == null) {
                parser = JSON.createNonBlockingByteArrayParser();
            }
            try {
                ((ByteArrayFeeder) parser.getNonBlockingInputFeeder()).feedInput(bytes, offset, offset + length);
                StreamChunk chunk = object(parser);
                if (parser.currentToken() == JsonToken.END_OBJECT && parser.getParsingContext().inRoot()
                        && onlyWhitespaceAfter(bytes, offset, length) && parser.nextToken() == JsonToken.NOT_AVAILABLE) {
                    fed += length;
                    return chunk;
                }
            } catch (IOException e) {
                // Decided below.
            }
            close();
            return parse(new String(bytes, offset, length, StandardCharsets.UTF_8));
        }

        /**
         * Whether only whitespace follows the object in the chunk. Asked of the bytes, not the
         * parser: a fed parser takes a trailing {@code 0} or {@code "x} for the start of a value
         * that more input may finish, where {@code JSON.parse} refuses them.
         */
        private boolean onlyWhitespaceAfter(byte[] bytes, int offset, int length) {
            long end = parser.currentLocation().getByteOffset() - fed;
            if (end < 0 || end > length) {
                return false;  // an offset outside the chunk: let the one-chunk parse decide
            }
            for (long i = end; i < length; i++) {
                byte b = bytes[offset + (int) i];
                if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
                    return false;
                }
            }
            return true;
        }

        @Override
        public void close() {
            if (parser != null) {
                try {
                    parser.close();
                } catch (IOException e) {
                    // Nothing to release that could fail: the parser reads an array.
                } finally {
                    parser = null;
                    fed = 0;
                }
            }
        }
    }

    private static String errorCode(JsonParser p, JsonToken value) throws IOException {
        String code = null;
        String type = null;
        if (value == JsonToken.START_OBJECT) {
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken fieldValue = p.nextToken();
                boolean scalar = fieldValue.isScalarValue() && truthy(p, fieldValue);
                if (scalar && field.equals("code")) {
                    code = p.getText();
                } else if (scalar && fieldValue == JsonToken.VALUE_STRING && field.equals("type")) {
                    type = p.getText();
                } else {
                    p.skipChildren();
                }
            }
        } else {
            p.skipChildren();
        }
        return code != null ? code : type != null ? type : "unknown";
    }

    /** JavaScript's truthiness of the value at the parser; objects and arrays are true. */
    private static boolean truthy(JsonParser p, JsonToken value) throws IOException {
        return switch (value) {
            case VALUE_NULL, VALUE_FALSE -> false;
            case VALUE_STRING -> p.getTextLength() > 0;
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> p.getDoubleValue() != 0;
            default -> true;
        };
    }

    /** At a usage object's start; leaves the parser at its end. */
    private static long completionTokens(JsonParser p) throws IOException {
        long tokens = 0;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            if (p.nextToken() == JsonToken.VALUE_NUMBER_INT && field.equals("completion_tokens")) {
                tokens = p.getLongValue();
            } else {
                p.skipChildren();
            }
        }
        return tokens;
    }

    /** At the choices array's start; leaves the parser at its end. */
    private static boolean firstDeltaHasContent(JsonParser p) throws IOException {
        JsonToken first = p.nextToken();
        if (first == JsonToken.END_ARRAY) {
            return false;
        }
        boolean content = false;
        if (first == JsonToken.START_OBJECT) {
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                if (p.nextToken() == JsonToken.START_OBJECT && field.equals("delta")) {
                    content = deltaHasContent(p);
                } else {
                    p.skipChildren();
                }
            }
        } else {
            p.skipChildren();
        }
        for (JsonToken next; (next = p.nextToken()) != JsonToken.END_ARRAY; ) {
            if (next == null || next == JsonToken.NOT_AVAILABLE) {
                // The blocking parser fails at the end of its input; the fed one says it needs more.
                throw new JsonParseException(p, "a chunk's choices array is not closed");
            }
            p.skipChildren();
        }
        return content;
    }

    private static boolean deltaHasContent(JsonParser p) throws IOException {
        boolean content = false;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            if (p.nextToken() == JsonToken.VALUE_STRING && field.equals("content")) {
                content = p.getTextLength() > 0;
            } else {
                p.skipChildren();
            }
        }
        return content;
    }
}
