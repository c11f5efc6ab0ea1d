package org.cocoonjvm.load;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;

/**
 * What the load driver needs of one streamed chat chunk: an in-band error's code, the usage's
 * completion tokens, the delta's content. Read with Jackson's streaming parser, skipping the
 * rest: building a tree per chunk made the driver the largest allocator in a benchmark process
 * (42% of it at 64 streams, beside the gateway and the worker it measures), and its garbage
 * collections paused all three.
 *
 * @param error            an {@code error} member was present
 * @param errorCode        its {@code code}, else its {@code type}; null if neither
 * @param completionTokens {@code usage.completion_tokens}, or -1 without a usage
 * @param content          {@code choices[0].delta.content}, or null
 */
record StreamChunk(boolean error, String errorCode, long completionTokens, String content) {
    private static final JsonFactory JSON = new JsonFactory();

    /** @throws IOException if {@code data} is not one JSON object */
    static StreamChunk parse(String data) throws IOException {
        try (JsonParser p = JSON.createParser(data)) {
            expect(p.nextToken(), JsonToken.START_OBJECT);
            boolean error = false;
            String errorCode = null;
            long completionTokens = -1;
            String content = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken value = p.nextToken();
                switch (name) {
                    case "error" -> {
                        error = true;
                        errorCode = value == JsonToken.START_OBJECT ? errorCode(p) : skip(p, null);
                    }
                    case "usage" -> completionTokens = value == JsonToken.START_OBJECT ? completionTokens(p) : skip(p, -1L);
                    case "choices" -> content = value == JsonToken.START_ARRAY ? firstDeltaContent(p) : skip(p, null);
                    default -> p.skipChildren();
                }
            }
            expect(p.currentToken(), JsonToken.END_OBJECT);
            if (p.nextToken() != null) {
                throw new IOException("text after the chunk's object");
            }
            return new StreamChunk(error, errorCode, completionTokens, content);
        }
    }

    private static String errorCode(JsonParser p) throws IOException {
        String code = null;
        String type = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken value = p.nextToken();
            if (name.equals("code") && value == JsonToken.VALUE_STRING) {
                code = p.getText();
            } else if (name.equals("type") && value == JsonToken.VALUE_STRING) {
                type = p.getText();
            } else {
                p.skipChildren();
            }
        }
        return code != null ? code : type;
    }

    private static long completionTokens(JsonParser p) throws IOException {
        long tokens = 0;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken value = p.nextToken();
            if (name.equals("completion_tokens") && value == JsonToken.VALUE_NUMBER_INT) {
                tokens = p.getLongValue();
            } else {
                p.skipChildren();
            }
        }
        return tokens;
    }

    /** The array's first element's {@code delta.content}; the rest of the array is skipped. */
    private static String firstDeltaContent(JsonParser p) throws IOException {
        String content = null;
        boolean first = true;
        for (JsonToken element; (element = p.nextToken()) != JsonToken.END_ARRAY; ) {
            if (element == null) {
                throw new IOException("the chunk ends inside choices");
            }
            if (first && element == JsonToken.START_OBJECT) {
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    JsonToken value = p.nextToken();
                    if (name.equals("delta") && value == JsonToken.START_OBJECT) {
                        content = deltaContent(p);
                    } else {
                        p.skipChildren();
                    }
                }
            } else {
                p.skipChildren();
            }
            first = false;
        }
        return content;
    }

    private static String deltaContent(JsonParser p) throws IOException {
        String content = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.currentName();
            JsonToken value = p.nextToken();
            if (name.equals("content") && value == JsonToken.VALUE_STRING) {
                content = p.getText();
            } else {
                p.skipChildren();
            }
        }
        return content;
    }

    private static <T> T skip(JsonParser p, T result) throws IOException {
        p.skipChildren();
        return result;
    }

    private static void expect(JsonToken actual, JsonToken expected) throws IOException {
        if (actual != expected) {
            throw new IOException("expected " + expected + ", found " + actual);
        }
    }
}
