package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.Future;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import io.vertx.grpc.common.GrpcStatus;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The client port's header and idle timeouts, over real sockets: connections that bring no
 * request are closed, however they trickle, and requests in flight are never cut, however silent.
 * Bounds are generous upwards (a noisy machine delays a close) and exact below: a deadline never
 * fires early, and each is measured from a moment before the gateway can have started it.
 */
class ConnectionTimeoutsTest {
    private static final long HEADER_MS = 300;
    private static final long IDLE_MS = 1_200;
    /** A request for one token from the slow worker is silent 2 s, well past the idle timeout. */
    private static final double SLOW_TOKENS_PER_SECOND = 0.5;
    private static final String SLOW_CHAT = chat("synthetic", false, "\"max_tokens\":1");
    private static final String HEALTH = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

    /**
     * The short header timeout, met by raw sockets only, which send at once: in a cold JVM on a
     * busy machine, a Vert.x client (the worker's included) took longer than that to send its first
     * head, and was cut as any such client is.
     */
    private static TestNetwork headers;
    /** The default header timeout; a slow worker, for requests that are silent longer than the idle timeout. */
    private static TestNetwork net;

    @BeforeAll
    static void start() {
        headers = new TestNetwork(new ConnectionOptions(HEADER_MS, IDLE_MS, ConnectionOptions.DEFAULTS.mostIdle()));
        net = new TestNetwork(new ConnectionOptions(ConnectionOptions.DEFAULTS.headerTimeoutMs(), IDLE_MS, ConnectionOptions.DEFAULTS.mostIdle()));
        net.addWorker(new SyntheticEngine(SLOW_TOKENS_PER_SECOND, 8, 4096), SchedulerOptions.DEFAULTS, 0);
    }

    @AfterAll
    static void stop() {
        headers.close();
        net.close();
    }

    @Test
    void connectionThatSendsNothing_isClosedAfterTheHeaderTimeout() throws Exception {
        long start = System.nanoTime();
        try (Socket socket = connect(headers)) {
            assertThat(untilClosed(socket)).isEmpty();
            assertThat(msSince(start)).isBetween(HEADER_MS, 3_000L);
        }
    }

    @Test
    void firstHeadTrickledIn_isClosedAfterTheHeaderTimeout_notExtendedByEachByte() throws Exception {
        double answered = responses();
        long start = System.nanoTime();
        try (Socket socket = connect(headers)) {
            send(socket, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            Thread trickling = trickle(socket);
            assertThat(untilClosed(socket)).isEmpty();
            // Trickling goes on for 10 s unless cut.
            assertThat(msSince(start)).isBetween(HEADER_MS, 3_000L);
            trickling.join(5_000);
        }
        assertNothingAnswered(answered);
    }

    @Test
    void nextHeadTrickledIn_onAKeepAliveConnection_hasTheHeaderTimeoutFromItsFirstByte_andIsCounted() throws Exception {
        double counted = closes("header_timeout");
        double answered;
        try (Socket socket = connect(headers)) {
            send(socket, HEALTH);
            assertThat(readResponse(socket.getInputStream())).startsWith("HTTP/1.1 200");
            answered = responses();
            long start = System.nanoTime();
            // A request line and a header begun: the codec has a request under way when the connection closes.
            send(socket, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            Thread trickling = trickle(socket);
            assertThat(untilClosed(socket)).isEmpty();
            // Below the idle timeout, which started with the response a moment earlier.
            assertThat(msSince(start)).isBetween(HEADER_MS, IDLE_MS - 100);
            trickling.join(5_000);
        }
        assertThat(closes("header_timeout")).isEqualTo(counted + 1);
        assertNothingAnswered(answered);
    }

    /**
     * Audit V, V-14: a head cut off by the header timeout got no answer, not a byte: it was
     * counted and logged as a 400 its client never saw (a slow client looked like a bad one).
     */
    private static void assertNothingAnswered(double respondedBefore) throws InterruptedException {
        Thread.sleep(200);  // the client may see the close before the event loop has handled what followed it
        assertThat(responses()).isEqualTo(respondedBefore);
    }

    /** {@code cocoon_http_responses_total} of the gateway the raw sockets go to, over every route and status. */
    private static double responses() {
        return headers.gateway.meters().find("cocoon.http.responses").counters().stream().mapToDouble(c -> c.count()).sum();
    }

    @Test
    void idleKeepAliveConnection_isClosedAfterTheIdleTimeout_andCounted() throws Exception {
        double counted = closes("idle_timeout");
        try (Socket socket = connect(headers)) {
            long asked = System.nanoTime();
            send(socket, HEALTH);
            assertThat(readResponse(socket.getInputStream())).startsWith("HTTP/1.1 200");
            assertThat(untilClosed(socket)).isEmpty();
            assertThat(msSince(asked)).isBetween(IDLE_MS, IDLE_MS + 3_000);
        }
        assertThat(closes("idle_timeout")).isGreaterThanOrEqualTo(counted + 1);
    }

    /**
     * Audit T, T-2: idle keep-alive connections cost a client nothing, and 20,000 of them from one
     * host took every file descriptor: new clients hung. Past the bound, the longest idle closes as
     * another goes idle; a connection with a request in flight is not idle, and stays.
     */
    @Test
    void pastTheBoundOnIdleConnections_theLongestIdleCloses_andABusyOneStays() throws Exception {
        TestNetwork bounded = new TestNetwork(new ConnectionOptions(ConnectionOptions.DEFAULTS.headerTimeoutMs(), 60_000, 2));
        bounded.addWorker(new SyntheticEngine(SLOW_TOKENS_PER_SECOND, 8, 4096), SchedulerOptions.DEFAULTS, 0);
        try (Socket busy = connect(bounded); Socket first = connect(bounded); Socket second = connect(bounded);
             Socket third = connect(bounded)) {
            send(busy, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: " + SLOW_CHAT.length() + "\r\n\r\n" + SLOW_CHAT);
            for (Socket idle : List.of(first, second)) {
                send(idle, HEALTH);
                assertThat(readResponse(idle.getInputStream())).startsWith("HTTP/1.1 200");
            }
            send(third, HEALTH);
            assertThat(readResponse(third.getInputStream())).startsWith("HTTP/1.1 200");

            assertThat(untilClosed(first)).as("the longest idle").isEmpty();
            assertThat(bounded.gateway.meters().get("cocoon.connections.closed").tag("reason", "idle_evicted").counter().count())
                    .isEqualTo(1);
            send(second, HEALTH);
            assertThat(readResponse(second.getInputStream())).startsWith("HTTP/1.1 200");
            assertThat(readResponse(busy.getInputStream())).as("the request in flight is answered").startsWith("HTTP/1.1 200");
        } finally {
            bounded.close();
        }
    }

    /** {@code cocoon_connections_closed_total{reason}} of the gateway the raw sockets go to; tests here run one at a time. */
    private static double closes(String reason) {
        return headers.gateway.meters().get("cocoon.connections.closed").tag("reason", reason).counter().count();
    }

    @Test
    void nonStreamingRequest_silentLongerThanTheIdleTimeout_isAnswered() {
        long start = System.nanoTime();
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, SLOW_CHAT).status()).isEqualTo(200);
        assertThat(msSince(start)).isGreaterThan(IDLE_MS);
    }

    /** The second head is read while the first is answered: the first response's end leaves one in flight. */
    @Test
    void pipelinedRequests_areEachAnswered_howeverLongTheSecondTakesAfterTheFirst() throws Exception {
        try (Socket socket = connect(net)) {
            send(socket, slowChatHead("") + SLOW_CHAT + slowChatHead("") + SLOW_CHAT);
            InputStream in = socket.getInputStream();
            assertThat(readResponse(in)).startsWith("HTTP/1.1 200");
            long first = System.nanoTime();
            assertThat(readResponse(in)).startsWith("HTTP/1.1 200");
            assertThat(msSince(first)).isGreaterThan(IDLE_MS);
        }
    }

    /** A 100 Continue is written whole, as a response is, while its request goes on. */
    @Test
    void requestExpectingContinue_silentLongerThanTheIdleTimeout_isAnswered() throws Exception {
        try (Socket socket = connect(net)) {
            send(socket, slowChatHead("Expect: 100-continue\r\n"));
            InputStream in = socket.getInputStream();
            assertThat(readHead(in)).startsWith("HTTP/1.1 100");
            long start = System.nanoTime();
            send(socket, SLOW_CHAT);
            assertThat(readResponse(in)).startsWith("HTTP/1.1 200");
            assertThat(msSince(start)).isGreaterThan(IDLE_MS);
        }
    }

    @Test
    void http2ConnectionWithNoStream_getsGoAway_afterTheIdleTimeout() throws Exception {
        Http2Client h2 = new Http2Client(false);
        try {
            long asked = System.nanoTime();
            assertThat(await(h2.call(HttpMethod.GET, "/health", null)).status()).isEqualTo(200);
            h2.assertGoneIdleSince(asked);
        } finally {
            h2.client.close();
        }
    }

    /** A client that never ends its request: once answered, the stream is reset and stops counting as in flight. */
    @Test
    void http2StreamAnsweredBeforeItsRequestEnded_isReset_andTheConnectionGoesIdle() throws Exception {
        Http2Client h2 = new Http2Client(false);
        try {
            CompletableFuture<Throwable> reset = new CompletableFuture<>();
            long asked = System.nanoTime();
            int status = await(net.onClientContext(() -> h2.client.request(new RequestOptions().setMethod(HttpMethod.GET)
                            .setURI("/v1/models").putHeader("Authorization", "Bearer " + API_KEY))
                    .compose(request -> {
                        request.exceptionHandler(reset::complete);
                        return request.sendHead().compose(v -> request.response());  // and never end()
                    })
                    .compose(response -> response.body().map(read -> response.statusCode()))));
            assertThat(status).isEqualTo(200);
            assertThat(reset.get(5, TimeUnit.SECONDS)).isInstanceOf(StreamResetException.class);
            assertThat(((StreamResetException) reset.get()).getCode()).isZero();  // NO_ERROR
            h2.assertGoneIdleSince(asked);
        } finally {
            h2.client.close();
        }
    }

    @Test
    void http2Stream_silentLongerThanTheIdleTimeout_isAnswered_withNoGoAway_whileShorterOnesEndBesideIt() {
        Http2Client h2 = new Http2Client(false);
        try {
            long start = System.nanoTime();
            Future<Http2Client.Answer> slow = h2.call(HttpMethod.POST, "/v1/chat/completions", SLOW_CHAT);
            assertThat(await(h2.call(HttpMethod.GET, "/health", null)).status()).isEqualTo(200);
            assertThat(await(slow).status()).isEqualTo(200);
            assertThat(msSince(start)).isGreaterThan(IDLE_MS);
            assertThat(h2.goAway).isNotDone();
        } finally {
            h2.client.close();
        }
    }

    /** The upgrading request is the HTTP/2 connection's first stream, open before the connection handler runs. */
    @Test
    void h2cUpgradeRequest_silentLongerThanTheIdleTimeout_isAnswered_thenTheConnectionGetsGoAway() throws Exception {
        Http2Client h2 = new Http2Client(true);
        try {
            long start = System.nanoTime();
            Http2Client.Answer answer = await(h2.call(HttpMethod.POST, "/v1/chat/completions", SLOW_CHAT));
            assertThat(answer.status()).isEqualTo(200);
            assertThat(answer.version()).isEqualTo(HttpVersion.HTTP_2);
            assertThat(msSince(start)).isGreaterThan(IDLE_MS);
            assertThat(h2.goAway).isNotDone();
            h2.closed.get(IDLE_MS + 5_000, TimeUnit.MILLISECONDS);
            assertThat(h2.goAway).isDone();
        } finally {
            h2.client.close();
        }
    }

    @Test
    void grpcCall_silentLongerThanTheIdleTimeout_completes() {
        long start = System.nanoTime();
        InferenceGrpc.Call call = new InferenceGrpc(net).call(API_KEY, InferenceGrpc.chat("synthetic").setMaxTokens(1).build());
        assertThat(call.status).isEqualTo(GrpcStatus.OK);
        assertThat(call.events.getLast().hasDone()).isTrue();
        assertThat(msSince(start)).isGreaterThan(IDLE_MS);
    }

    /** One HTTP/2 connection, and when the gateway sent GOAWAY on it and closed it. */
    private static final class Http2Client {
        record Answer(int status, HttpVersion version) {}

        final CompletableFuture<Long> goAway = new CompletableFuture<>();
        final CompletableFuture<Long> closed = new CompletableFuture<>();
        final HttpClient client;

        /** @param upgrade from HTTP/1.1 with the first request; otherwise h2c with prior knowledge */
        Http2Client(boolean upgrade) {
            client = net.vertx.httpClientBuilder()
                    .with(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(upgrade)
                            .setDefaultHost("127.0.0.1").setDefaultPort(net.gateway.port()))
                    .withConnectHandler(connection -> {
                        connection.goAwayHandler(frame -> goAway.complete(System.nanoTime()));
                        connection.closeHandler(v -> closed.complete(System.nanoTime()));
                    })
                    .build();
        }

        /** GOAWAY and the close came the idle timeout after {@code asked}, when the last request went out. */
        void assertGoneIdleSince(long asked) throws Exception {
            long closedAt = closed.get(IDLE_MS + 5_000, TimeUnit.MILLISECONDS);
            assertThat(goAway).isDone();
            assertThat(TimeUnit.NANOSECONDS.toMillis(closedAt - asked)).isBetween(IDLE_MS, IDLE_MS + 3_000);
        }

        /** Answered once the whole body is read. */
        Future<Answer> call(HttpMethod method, String path, String body) {
            RequestOptions options = new RequestOptions().setMethod(method).setURI(path)
                    .putHeader("Authorization", "Bearer " + API_KEY).putHeader("Content-Type", "application/json");
            return net.onClientContext(() -> client.request(options)
                    .compose(request -> body == null ? request.send() : request.send(body))
                    .compose(response -> response.body().map(read -> new Answer(response.statusCode(), response.version()))));
        }
    }

    private static Socket connect(TestNetwork network) throws IOException {
        Socket socket = new Socket("127.0.0.1", network.gateway.port());
        socket.setSoTimeout(10_000);
        return socket;
    }

    private static void send(Socket socket, String text) throws IOException {
        socket.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().flush();
    }

    /** A byte of a header value every 100 ms, for 10 s or until the connection is closed under it. */
    private static Thread trickle(Socket socket) {
        return Thread.ofVirtual().start(() -> {
            try {
                OutputStream out = socket.getOutputStream();
                for (int i = 0; i < 100; i++) {
                    out.write('a');
                    out.flush();
                    Thread.sleep(100);
                }
            } catch (IOException | InterruptedException closed) {
                // the gateway closed the connection: what the test waits for
            }
        });
    }

    /** What the gateway sent until it closed the connection. */
    private static byte[] untilClosed(Socket socket) throws IOException {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        byte[] buffer = new byte[4096];
        try {
            for (int n; (n = socket.getInputStream().read(buffer)) >= 0; ) {
                got.write(buffer, 0, n);
            }
        } catch (SocketException reset) {
            // closed with bytes of ours unread: a reset instead of a FIN, as closed as any
        }
        return got.toByteArray();
    }

    private static String slowChatHead(String extraHeaders) {
        return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY
                + "\r\nContent-Type: application/json\r\nContent-Length: " + SLOW_CHAT.length() + "\r\n" + extraHeaders + "\r\n";
    }

    /** One HTTP/1.1 response with a Content-Length: its head, the body read past. */
    private static String readResponse(InputStream in) throws IOException {
        String head = readHead(in);
        String length = head.lines().filter(l -> l.regionMatches(true, 0, "content-length:", 0, 15))
                .findFirst().orElseThrow(() -> new AssertionError("no content-length: " + head)).substring(15).strip();
        in.readNBytes(Integer.parseInt(length));
        return head;
    }

    private static String readHead(InputStream in) throws IOException {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                throw new AssertionError("closed in the response head: " + head);
            }
            head.append((char) b);
        }
        return head.toString();
    }

    private static long msSince(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }
}
