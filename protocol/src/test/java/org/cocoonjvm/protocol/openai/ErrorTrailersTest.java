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
}
