package org.cocoonjvm.worker.model;

import io.vertx.core.json.jackson.JacksonCodec;
import io.vertx.core.spi.JsonFactory;
import io.vertx.core.spi.json.JsonCodec;

/**
 * Keeps Vert.x on its streaming Jackson codec. Jinjava (chat templates) needs jackson-databind,
 * and Vert.x's default factory switches to its databind codec whenever that library is on the
 * class path: a different JSON behaviour for the whole process, and about 200 ms of ObjectMapper
 * set-up on whichever event loop first touches JSON (enough to miss a heartbeat). Registered in
 * {@code META-INF/services/io.vertx.core.spi.JsonFactory}; a factory with a lower
 * {@link #order()} still wins.
 */
public final class StreamingJsonFactory implements JsonFactory {
    private static final JsonCodec CODEC = new JacksonCodec();

    @Override
    public int order() {
        return 1000;
    }

    @Override
    public JsonCodec codec() {
        return CODEC;
    }
}
