package org.cocoonjvm.worker.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonObject;
import io.vertx.core.json.jackson.DatabindCodec;
import org.junit.jupiter.api.Test;

class StreamingJsonFactoryTest {
    @Test
    void vertxKeepsItsStreamingCodecDespiteJinjavasDatabind() {
        assertThat(Json.CODEC).isNotInstanceOf(DatabindCodec.class).isSameAs(new StreamingJsonFactory().codec());
        assertThat(new JsonObject("{\"a\":[1,2.5,\"x\"]}").encode()).isEqualTo("{\"a\":[1,2.5,\"x\"]}");
        // and Jinjava, which does use databind, still renders
        assertThat(new ChatTemplate("{{ messages | length }}", "", "").render(java.util.List.of(), false)).isEqualTo("0");
    }
}
