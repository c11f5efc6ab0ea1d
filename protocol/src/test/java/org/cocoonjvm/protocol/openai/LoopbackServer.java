package org.cocoonjvm.protocol.openai;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A real Vert.x HTTP server on a free loopback port whose every request is answered by one
 * handler (run on the server's event loop), and a real JDK client to call it.
 */
final class LoopbackServer implements AutoCloseable {
    private final Vertx vertx = Vertx.vertx();
    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private final HttpServer server;

    LoopbackServer(Handler<HttpServerRequest> handler) {
        server = await(vertx.createHttpServer()
                .requestHandler(handler)
                .listen(0, "127.0.0.1"));
    }

    HttpResponse<String> get() throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.actualPort() + "/"))
                .timeout(Duration.ofSeconds(5)).GET().build();
        return client.send(request, HttpResponse.BodyHandlers.ofString());
    }

    static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("Vert.x future did not complete", e);
        }
    }

    @Override
    public void close() {
        client.close();
        await(vertx.close());
    }
}
