package org.cocoonjvm.protocol.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
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
        assertThat(NetTransport.parse("auto")).isEqualTo(NetTransport.AUTO);
        assertThat(NetTransport.parse("NIO")).isEqualTo(NetTransport.NIO);
        assertThat(NetTransport.parse("epoll")).isEqualTo(NetTransport.EPOLL);
        assertThat(NetTransport.parse("io_uring")).isEqualTo(NetTransport.IO_URING);
        assertThat(NetTransport.parse(" io-uring ")).isEqualTo(NetTransport.IO_URING);
    }

    @Test
    void parse_unknownName_namesTheAcceptedOnes() {
        assertThatThrownBy(() -> NetTransport.parse("uring"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unknown transport 'uring': use auto, nio, epoll or io_uring");
    }

    @Test
    void auto_isIoUringWhereTheKernelHasIt_elseNio() {
        assertThat(NetTransport.AUTO.resolve()).isSameAs(Transport.IO_URING.available() ? Transport.IO_URING : Transport.NIO);
        assertThat(NetTransport.NIO.resolve()).isSameAs(Transport.NIO);
    }

    /** Each transport this machine offers carries a real HTTP exchange; one it lacks fails with the reason. */
    @ParameterizedTest
    @EnumSource(NetTransport.class)
    void everyAvailableTransport_servesHttp_anUnavailableOneSaysWhy(NetTransport choice) throws Exception {
        Transport wanted = switch (choice) {
            case AUTO -> Transport.IO_URING.available() ? Transport.IO_URING : Transport.NIO;
            case NIO -> Transport.NIO;
            case EPOLL -> Transport.EPOLL;
            case IO_URING -> Transport.IO_URING;
        };
        if (!wanted.available()) {
            assertThatThrownBy(choice::vertx).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("is not available here").hasMessageContaining("--transport nio or auto");
            return;
        }
        Vertx vertx = choice.vertx();
        try {
            assertThat(((VertxInternal) vertx).transport()).hasSameClassAs(wanted.implementation());
            HttpServer server = vertx.createHttpServer().requestHandler(r -> r.response().end("pong " + r.path()))
                    .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
            HttpClient client = vertx.createHttpClient();
            Buffer body = client.request(HttpMethod.GET, server.actualPort(), "127.0.0.1", "/ping")
                    .compose(request -> request.send().compose(HttpClientResponse::body))
                    .await(10, TimeUnit.SECONDS);
            assertThat(body.toString()).isEqualTo("pong /ping");
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
