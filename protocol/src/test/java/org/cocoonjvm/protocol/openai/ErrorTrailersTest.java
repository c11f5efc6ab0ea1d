package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.handler.codec.http.QueryStringDecoder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ErrorTrailersTest {
    @Test
    void statusMessage_keepsPrintableAscii_andEscapesPercentPlusAndTheRest() {
        assertThat(ErrorTrailers.statusMessage("Missing or invalid API key; send 'authorization: Bearer <key>', got 3.0/2."))
                .isEqualTo("Missing or invalid API key; send 'authorization: Bearer <key>', got 3.0/2.");
        assertThat(ErrorTrailers.statusMessage("100% a+b\tc é 猫"))
                .isEqualTo("100%25 a%2Bb%09c %C3%A9 %E7%8C%AB");
    }

    /** Vert.x's client decodes grpc-message as a URL form component: what was sent is what it reads. */
    @Test
    void statusMessage_readsBackAsWritten_throughAFormComponentDecoder() {
        String message = "a+b = 100% of 'c'; d/e é";
        assertThat(QueryStringDecoder.decodeComponent(ErrorTrailers.statusMessage(message), StandardCharsets.UTF_8))
                .isEqualTo(message);
    }

    /** A message that quotes a client's 12 kB (a chat template's raise_exception) fits a peer's header limit, cut at a character. */
    @Test
    void statusMessage_ofALongMessage_isCutToTheLimitAtACharacter_withAnEllipsis() {
        for (String unit : new String[] {"x", "猫", "😀"}) {
            String message = "The model's chat template refused these messages: bad: " + unit.repeat(12_000);
            String encoded = ErrorTrailers.statusMessage(message);

            assertThat(encoded.length()).isLessThanOrEqualTo(ErrorTrailers.MAX_MESSAGE_CHARS);
            String decoded = QueryStringDecoder.decodeComponent(encoded, StandardCharsets.UTF_8);
            assertThat(decoded).endsWith(unit + "…").doesNotContain("\uFFFD");
            assertThat(message).startsWith(decoded.substring(0, decoded.length() - 1));
        }
        String fits = "y".repeat(ErrorTrailers.MAX_MESSAGE_CHARS);
        assertThat(ErrorTrailers.statusMessage(fits)).isEqualTo(fits);
    }
}
