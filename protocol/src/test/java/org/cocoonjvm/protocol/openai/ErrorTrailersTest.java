package org.cocoonjvm.protocol.openai;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ErrorTrailersTest {
    /** Audit L, 6: a '+' went out as %2B, which grpc-js (decodeURI) showed as it is: "character 3 is U%2B0020". */
    @Test
    void statusMessage_keepsPrintableAscii_plusIncluded_andEscapesPercentAndTheRest() {
        assertThat(ErrorTrailers.statusMessage("Missing or invalid API key; send 'authorization: Bearer <key>', got 3.0/2."))
                .isEqualTo("Missing or invalid API key; send 'authorization: Bearer <key>', got 3.0/2.");
        assertThat(ErrorTrailers.statusMessage("100% a+b\tc é 猫"))
                .isEqualTo("100%25 a+b%09c %C3%A9 %E7%8C%AB");
    }

    @Test
    void decode_readsBackWhatWasWritten_plusIncluded() {
        String message = "a+b = 100% of 'c'; d/e é, U+0020";
        assertThat(ErrorTrailers.decode(ErrorTrailers.statusMessage(message))).isEqualTo(message);
    }

    @Test
    void decode_ofAMalformedEscape_isTheMessageAsSent() {
        assertThat(ErrorTrailers.decode("100% sure")).isEqualTo("100% sure");
    }

    /** A message that quotes a client's 12 kB (a chat template's raise_exception) fits a peer's header limit, cut at a character. */
    @Test
    void statusMessage_ofALongMessage_isCutToTheLimitAtACharacter_withAnEllipsis() {
        for (String unit : new String[] {"x", "猫", "😀"}) {
            String message = "The model's chat template refused these messages: bad: " + unit.repeat(12_000);
            String encoded = ErrorTrailers.statusMessage(message);

            assertThat(encoded.length()).isLessThanOrEqualTo(ErrorTrailers.MAX_MESSAGE_CHARS);
            String decoded = ErrorTrailers.decode(encoded);
            assertThat(decoded).endsWith(unit + "…").doesNotContain("\uFFFD");
            assertThat(message).startsWith(decoded.substring(0, decoded.length() - 1));
        }
        String fits = "y".repeat(ErrorTrailers.MAX_MESSAGE_CHARS);
        assertThat(ErrorTrailers.statusMessage(fits)).isEqualTo(fits);
    }
}
