package org.cocoonjvm.protocol.transport;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.impl.ConnectionBase;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link FlushBatching} on a real server: many HTTP/2 streams written from one event-loop task
 * still each get every byte, in order, and so does an HTTP/1.1 response written in one task.
 */
class FlushBatchingTest {
    private static final int STREAMS = 64;
    private static final int CHUNKS = 50;

    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void http2Streams_writtenTogether_eachGetEveryChunkInOrder() throws Exception {
        List<HttpConnection> connections = new CopyOnWriteArrayList<>();
        List<HttpServerResponse> open = new CopyOnWriteArrayList<>();
        HttpServer server = vertx.createHttpServer()
                .connectionHandler(connection -> {
                    FlushBatching.install(connection);
                    connections.add(connection);
                })
                .requestHandler(request -> {
                    request.response().setChunked(true);
                    open.add(request.response());
                    if (open.size() == STREAMS) {
                        // Every chunk of every stream from one task, as an engine step's deltas arrive.
                        vertx.runOnContext(v -> {
                            for (int c = 0; c < CHUNKS; c++) {
                                for (HttpServerResponse response : open) {
                                    response.write("chunk-" + c + ";");
                                }
                            }
                            open.forEach(HttpServerResponse::end);
                        });
                    }
                });
        server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
        List<Future<Buffer>> bodies = new ArrayList<>();
        for (int i = 0; i < STREAMS; i++) {
            bodies.add(onContext(() -> client.request(new RequestOptions().setMethod(HttpMethod.GET).setHost("127.0.0.1")
                            .setPort(server.actualPort()).setURI("/"))
                    .compose(request -> request.send().compose(response -> response.body()))));
        }
        Future.all(bodies).await(20, TimeUnit.SECONDS);

        StringBuilder expected = new StringBuilder();
        for (int c = 0; c < CHUNKS; c++) {
            expected.append("chunk-").append(c).append(';');
        }
        for (Future<Buffer> body : bodies) {
            assertThat(body.result().toString()).isEqualTo(expected.toString());
        }
        assertThat(connections).hasSize(1);
        assertThat(pipelineNames(connections.getFirst())).contains(FlushBatching.HANDLER_NAME);
    }

    @Test
    void http1Response_writtenInOneTask_arrivesWhole() throws Exception {
        List<HttpConnection> connections = new CopyOnWriteArrayList<>();
        HttpServer server = vertx.createHttpServer()
                .connectionHandler(connection -> {
                    FlushBatching.install(connection);
                    connections.add(connection);
                })
                .requestHandler(request -> vertx.runOnContext(v -> {
                    // A completion's last events, as the SSE writer sends them: one task, three writes.
                    request.response().setChunked(true).write("data: usage\n\n");
                    request.response().write("data: [DONE]\n\n");
                    request.response().end();
                }));
        server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        HttpClient client = vertx.createHttpClient();
        Buffer body = onContext(() -> client.request(HttpMethod.GET, server.actualPort(), "127.0.0.1", "/")
                .compose(request -> request.send().compose(response -> response.body())))
                .await(10, TimeUnit.SECONDS);

        assertThat(body.toString()).isEqualTo("data: usage\n\ndata: [DONE]\n\n");
        assertThat(pipelineNames(connections.getFirst())).contains(FlushBatching.HANDLER_NAME);
    }

    /** Client chains start on an event loop: from the test thread, a response handler races its body (gateway's TestNetwork). */
    private <T> Future<T> onContext(Supplier<Future<T>> chain) {
        Promise<T> result = Promise.promise();
        vertx.getOrCreateContext().runOnContext(v -> chain.get().onComplete(result));
        return result.future();
    }

    private static List<String> pipelineNames(HttpConnection connection) {
        return ((ConnectionBase) connection).channel().pipeline().names();
    }
}
