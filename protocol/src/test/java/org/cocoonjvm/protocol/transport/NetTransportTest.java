package org.cocoonjvm.protocol.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.transport.Transport;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class NetTransportTest {

    @Test
    void parse_acceptsTheDocumentedNames_inAnyCase() {
        assertThat(NetTransport.parse("nio")).isEqualTo(NetTransport.NIO);
        assertThat(NetTransport.parse("io_uring")).isEqualTo(NetTransport.IO_URING);
        assertThat(NetTransport.parse(" IO-URING ")).isEqualTo(NetTransport.IO_URING);
        assertThat(NetTransport.IO_URING).hasToString("io_uring");
    }

    @Test
    void parse_unknownName_namesTheAcceptedOnes() {
        assertThatThrownBy(() -> NetTransport.parse("epoll"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unknown transport 'epoll': use nio or io_uring");
    }

    /** Each transport this machine offers carries a real HTTP exchange; one it lacks fails with the reason. */
    @ParameterizedTest
    @EnumSource(NetTransport.class)
    void anAvailableTransport_servesHttp_anUnavailableOneSaysWhy(NetTransport choice) throws Exception {
        if (!choice.available()) {
            assertThatThrownBy(choice::vertx).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("is not available here").hasMessageContaining("use --transport nio");
            return;
        }
        Vertx vertx = choice.vertx();
        try {
            Transport wanted = choice == NetTransport.NIO ? Transport.NIO : Transport.IO_URING;
            assertThat(((VertxInternal) vertx).transport()).hasSameClassAs(wanted.implementation());
            HttpServer server = vertx.createHttpServer().requestHandler(r -> r.response().end("pong " + r.path()))
                    .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
            // Started on an event loop, not the test thread, as ChunkFramingTest's calls (see its onContext).
            Promise<Buffer> answered = Promise.promise();
            vertx.runOnContext(v -> vertx.createHttpClient().request(HttpMethod.GET, server.actualPort(), "127.0.0.1", "/ping")
                    .compose(request -> request.send().compose(HttpClientResponse::body))
                    .onComplete(answered));
            Buffer body = answered.future().await(10, TimeUnit.SECONDS);
            assertThat(body.toString()).isEqualTo("pong /ping");
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
