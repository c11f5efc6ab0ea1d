package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vertx.core.json.JsonArray;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

class JsonTextTest {

    private static String literal(String s) {
        return JsonText.appendString(new StringBuilder(), s).toString();
    }

    /** Decodes a JSON string literal with Vert.x's (Jackson's) parser. */
    private static String decode(String literal) {
        return new JsonArray("[" + literal + "]").getString(0);
    }

    @Test
    void appendString_plainText_isQuotedUnchanged() {
        assertThat(literal("hello world")).isEqualTo("\"hello world\"");
        assertThat(literal("")).isEqualTo("\"\"");
    }

    @Test
    void appendString_quotesAndBackslash_areEscaped() {
        assertThat(literal("say \"hi\" \\ bye")).isEqualTo("\"say \\\"hi\\\" \\\\ bye\"");
    }

    @Test
    void appendString_newlineReturnTab_useShortEscapes() {
        assertThat(literal("a\nb\rc\td")).isEqualTo("\"a\\nb\\rc\\td\"");
    }

    @Test
    void appendString_otherControlChars_useLowercaseUnicodeEscapes() {
        assertThat(literal("\u0000\u0001\b\f\u001b\u001f")).isEqualTo("\"\\u0000\\u0001\\u0008\\u000c\\u001b\\u001f\"");
    }

    @Test
    void appendString_lineAndParagraphSeparators_areEscaped() {
        assertThat(literal("a\u2028b\u2029c")).isEqualTo("\"a\\u2028b\\u2029c\"");
    }

    @Test
    void appendString_nonAsciiAndSurrogatePairs_passThrough() {
        assertThat(literal("héllo ✓ 😀 \u007f")).isEqualTo("\"héllo ✓ 😀 \u007f\"");
    }

    @Test
    void appendString_appendsToExistingBuilderAndReturnsIt() {
        StringBuilder out = new StringBuilder("{\"k\":");

        StringBuilder returned = JsonText.appendString(out, "v");

        assertThat(returned).isSameAs(out);
        assertThat(out.toString()).isEqualTo("{\"k\":\"v\"");
    }

    @Test
    void appendString_everyCharBelow0x80AndSeparators_roundTripThroughAJsonParser() {
        StringBuilder all = new StringBuilder();
        for (char c = 0; c < 0x80; c++) {
            all.append(c);
        }
        all.append("\u2028\u2029é😀");

        String literal = literal(all.toString());

        assertThat(decode(literal)).isEqualTo(all.toString());
        assertThat(literal).as("no raw control character or line separator may be written")
                .doesNotContainPattern("[\\x00-\\x1f\\u2028\\u2029]");
    }

    @Test
    void writeString_bytesAreTheUtf8OfAppendString_forAnyText() {
        Random random = new Random(42);
        // Characters from every class the two writers treat differently: plain ASCII, escapes,
        // control characters, the separators, two- and three-byte UTF-8, and surrogate pairs.
        String[] pool = {"a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\u0000", "\u001f", "\u007f", "\u2028", "\u2029", "é",
                "✓", "中", "😀", "𝄞"};
        for (int n = 0; n < 5_000; n++) {
            StringBuilder text = new StringBuilder();
            for (int len = random.nextInt(12); len > 0; len--) {
                text.append(pool[random.nextInt(pool.length)]);
            }
            String s = text.toString();
            ByteBuf out = Unpooled.buffer(2 + JsonText.MOST_BYTES_PER_CHAR * s.length());
            int capacity = out.capacity();

            JsonText.writeString(out, s);

            assertThat(out.toString(StandardCharsets.UTF_8)).as(literal(s)).isEqualTo(literal(s));
            assertThat(out.capacity()).as("the room it asks for is enough").isEqualTo(capacity);
        }
    }
}
