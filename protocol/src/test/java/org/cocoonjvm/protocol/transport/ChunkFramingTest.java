package org.cocoonjvm.protocol.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.net.impl.ConnectionBase;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link ChunkFraming} on a real server: the bytes on the wire are exactly the chunked encoding
 * Netty's encoder writes, for every chunk size around the framing's limits, and responses that
 * are not chunked, or have no body, share a keep-alive connection with framed ones unharmed.
 */
class ChunkFramingTest {
    /** Sizes across one, two and four hex digits, and either side of {@link ChunkFraming#MOST_FRAMED}. */
    private static final int[] SIZES = {1, 15, 16, 230, 255, 256, 4095, 4096, ChunkFraming.MOST_FRAMED, ChunkFraming.MOST_FRAMED + 1};

    private final Vertx vertx = transport().vertx();
    /** Each connection's pipeline as it was once installed (a closed connection's pipeline is empty). */
    private final List<List<String>> connections = new CopyOnWriteArrayList<>();
    private HttpServer server;

    /** The socket layer under the server; {@link ChunkFramingOnIoUringTest} runs every case on io_uring. */
    NetTransport transport() {
        return NetTransport.NIO;
    }

    @BeforeEach
    void start() throws Exception {
        server = vertx.createHttpServer()
                .connectionHandler(connection -> {
                    FlushBatching.install(connection);
                    ChunkFraming.install(connection);
                    connections.add(((ConnectionBase) connection).channel().pipeline().names());
                })
                .requestHandler(request -> {
                    HttpServerResponse response = request.response();
                    switch (request.path()) {
                        case "/chunked" -> {
                            response.setChunked(true);
                            for (int size : SIZES) {
                                response.write(body(size));
                            }
                            response.end(Buffer.buffer("last"));
                        }
                        case "/trailers" -> {
                            response.setChunked(true).write("data: 1\n\n");
                            response.trailers().add("x-done", "yes");
                            response.end();
                        }
                        case "/length" -> {
                            // Streamed, but with a Content-Length: no chunk framing at all.
                            response.putHeader("Content-Length", "10").write("01234");
                            response.end("56789");
                        }
                        case "/empty" -> response.setStatusCode(204).end();
                        default -> response.setStatusCode(404).end();
                    }
                });
        server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void chunkedResponse_wireBytesAreExactChunkedEncoding() throws Exception {
        String wire = rawExchange("GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        StringBuilder expected = new StringBuilder();
        for (int size : SIZES) {
            expected.append(Integer.toHexString(size)).append("\r\n").append(body(size)).append("\r\n");
        }
        expected.append("4\r\nlast\r\n0\r\n\r\n");
        assertThat(wire).containsIgnoringCase("transfer-encoding: chunked");
        assertThat(wire.substring(wire.indexOf("\r\n\r\n") + 4)).isEqualTo(expected.toString());
        assertThat(connections.getFirst()).contains(ChunkFraming.HANDLER_NAME);
    }

    @Test
    void trailers_stillWrittenByTheEncoder() throws Exception {
        String wire = rawExchange("GET /trailers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        assertThat(wire.substring(wire.indexOf("\r\n\r\n") + 4)).isEqualTo("9\r\ndata: 1\n\n\r\n0\r\nx-done: yes\r\n\r\n");
    }

    @Test
    void keepAliveConnection_mixesFramedAndUnframedResponses() throws Exception {
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true), new PoolOptions().setHttp1MaxSize(1));
        StringBuilder chunked = new StringBuilder();
        for (int size : SIZES) {
            chunked.append(body(size));
        }
        chunked.append("last");
        for (int round = 0; round < 3; round++) {
            assertThat(get(client, HttpMethod.GET, "/chunked").toString()).isEqualTo(chunked.toString());
            assertThat(get(client, HttpMethod.GET, "/length").toString()).isEqualTo("0123456789");
            assertThat(get(client, HttpMethod.GET, "/empty").length()).isZero();
            assertThat(get(client, HttpMethod.HEAD, "/chunked").length()).isZero();
        }
        assertThat(connections).as("one keep-alive connection served every request").hasSize(1);
    }

    @Test
    void http2Connection_leftAsItIs() throws Exception {
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
        assertThat(get(client, HttpMethod.GET, "/trailers").toString()).isEqualTo("data: 1\n\n");
        assertThat(connections.getFirst()).doesNotContain(ChunkFraming.HANDLER_NAME);
    }

    private Buffer get(HttpClient client, HttpMethod method, String path) throws Exception {
        return onContext(() -> client.request(method, server.actualPort(), "127.0.0.1", path)
                .compose(request -> request.send().compose(HttpClientResponse::body)))
                .await(10, TimeUnit.SECONDS);
    }

    /** Sends the request on a plain socket and returns every byte until the server closes. */
    private String rawExchange(String request) throws Exception {
        try (Socket socket = new Socket("127.0.0.1", server.actualPort())) {
            socket.setSoTimeout(10_000);
            OutputStream out = socket.getOutputStream();
            out.write(request.getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            in.transferTo(all);
            return all.toString(StandardCharsets.ISO_8859_1);
        }
    }

    /** Printable, position-dependent text, so a misplaced byte shows. */
    private static String body(int size) {
        StringBuilder s = new StringBuilder(size);
        for (int i = 0; i < size; i++) {
            s.append((char) ('a' + (i * 7 + size) % 26));
        }
        return s.toString();
    }

    private <T> Future<T> onContext(Supplier<Future<T>> chain) {
        Promise<T> result = Promise.promise();
        vertx.getOrCreateContext().runOnContext(v -> chain.get().onComplete(result));
        return result.future();
    }
}
