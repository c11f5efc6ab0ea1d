package org.cocoonjvm.gateway.registry;

import static org.assertj.core.api.Assertions.assertThat;

import org.cocoonjvm.protocol.grpc.ModelRef;
import org.junit.jupiter.api.Test;

/** The "name or name@hash" rule, compared in place: the same answers as building name@hash. */
class ModelKeysTest {
    private final ModelRef model = ModelRef.newBuilder().setName("org/llama").setHash("ab12").build();

    @Test
    void matches_theNameOrNameAtHash_only() {
        assertThat(ModelKeys.matches(model, "org/llama")).isTrue();
        assertThat(ModelKeys.matches(model, "org/llama@ab12")).isTrue();
        for (String other : new String[] {"org/llam", "org/llama@", "org/llama@ab1", "org/llama@ab123", "org/llama#ab12",
                "org/llamaXab12", "xrg/llama@ab12", "org/llama@ab12 ", "", "@ab12"}) {
            assertThat(ModelKeys.matches(model, other)).as(other).isFalse();
        }
        assertThat(ModelKeys.matches(model, null)).isFalse();
    }

    @Test
    void anEmptyHash_isMatchedAsNameAt() {
        ModelRef unhashed = ModelRef.newBuilder().setName("m").build();
        assertThat(ModelKeys.matches(unhashed, "m@")).isEqualTo(ModelKeys.id(unhashed).equals("m@")).isTrue();
        assertThat(ModelKeys.keys(unhashed)).containsExactly("m", "m@");
    }

    @Test
    void id_andKeys_nameAtHash() {
        assertThat(ModelKeys.id(model)).isEqualTo("org/llama@ab12");
        assertThat(ModelKeys.keys(model)).containsExactly("org/llama", "org/llama@ab12");
    }
}
