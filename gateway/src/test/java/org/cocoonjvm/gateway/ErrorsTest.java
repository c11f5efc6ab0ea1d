package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ADMIN_KEY;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.Socket;
import java.util.List;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Every failure a client can cause or meet, as OpenAI-style error JSON with the right status. */
class ErrorsTest {
    private TestNetwork net;

    @BeforeEach
    void start() {
        net = new TestNetwork();
    }

    @AfterEach
    void stop() {
        net.close();
    }

    /**
     * Requests any client can send without a key: an HTTP/1.1 request without Host or with two, a gRPC-Web one
     * (not served), gRPC over HTTP/1.1. Each gets an OpenAI-style error, and the gateway logs no
     * ERROR stack trace for any (it did: audit H, H-3; the last was a bare 415: H-4).
     */
    @Test
    void noHostHeader_andGrpcWeb_getOpenAiErrors_andNoErrorInTheLog() throws Exception {
        try (LogCapture log = new LogCapture(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
            String noHost = raw("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
            assertThat(noHost).startsWith("HTTP/1.1 400").contains("\"type\":\"invalid_request_error\"", "no Host header");
            String twoHosts = raw("GET /v1/models HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n");
            assertThat(twoHosts).startsWith("HTTP/1.1 400").contains("2 Host headers");
            // Audit T, T-8: only chunked frames a body here; another coding list a proxy may frame its own way.
            String identityChunked = raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked"
                    + "\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
            assertThat(identityChunked).startsWith("HTTP/1.1 400").contains("Transfer-Encoding \\\"identity, chunked\\\" is not supported");
            String grpcWeb = raw("POST /cocoon.v1.Inference/Generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + "Content-Type: application/grpc-web-text\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0");
            assertThat(grpcWeb).startsWith("HTTP/1.1 404").contains("\"error\"");
            String grpcOverHttp1 = raw("POST /cocoon.v1.Inference/Generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + "Content-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0");
            assertThat(grpcOverHttp1).startsWith("HTTP/1.1 400").contains("gRPC needs HTTP/2", "http/1.1");
            assertThat(log.lines()).noneMatch(l -> l.startsWith("ERROR"));
        }
    }

    /**
     * A request line or headers longer than the gateway reads, or bytes that are not HTTP: Netty's
     * codec fails them before any route, and Vert.x answered with a bare status, no request id and
     * no log line (audit H, H-4). Now each is an OpenAI-style error with an {@code x-request-id} that
     * names its access-log line (with the method and path where the request line was read), then
     * the connection closes.
     */
    @Test
    void requestsTheHttpCodecCannotRead_getOpenAiErrors_anId_andAnAccessLogLine() throws Exception {
        withAccessLog((access, all) -> {
            String longUri = raw("GET /v1/models?x=" + "a".repeat(5000) + " HTTP/1.1\r\nHost: x\r\n\r\n");
            // With no request line read, Netty takes the request for HTTP/1.0, and so does the answer.
            assertThat(longUri).startsWith("HTTP/1.0 414").contains("\"code\":\"uri_too_long\"", "4096 bytes",
                    "\"type\":\"invalid_request_error\"").containsIgnoringCase("x-request-id: req_");
            String bigHeaders = raw("GET /v1/models HTTP/1.1\r\nHost: x\r\nCookie: " + "c".repeat(9000) + "\r\n\r\n");
            assertThat(bigHeaders).startsWith("HTTP/1.1 431").contains("\"code\":\"headers_too_large\"", "8192 bytes");
            String garbage = raw("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
            assertThat(garbage).startsWith("HTTP/1.1 400").contains("not valid HTTP/1.1");

            assertThat(access.lines()).hasSize(3);
            assertThat(access.lines().get(0)).contains("\"request_id\":\"" + requestId(longUri) + "\"", "\"method\":null",
                    "\"path\":null", "\"status\":414", "\"error\":\"uri_too_long\"");
            assertThat(access.lines().get(1)).contains("\"method\":\"GET\"", "\"path\":\"/v1/models\"", "\"status\":431",
                    "\"error\":\"headers_too_large\"").doesNotContain("ccccc");
            assertThat(access.lines().get(2)).contains("\"status\":400", "\"error\":\"invalid_request_error\"");
            assertThat(all.lines()).noneMatch(l -> l.startsWith("ERROR"));
            assertThat(net.call(HttpMethod.GET, "/metrics", null, null).body())
                    .contains("cocoon_http_responses_total{route=\"other\",status=\"414\"} 1.0",
                            "cocoon_http_responses_total{route=\"v1\",status=\"431\"} 1.0");
        });
    }

    /**
     * Audit T, T-8: Vert.x answered a request line of any version but HTTP/1.0 and HTTP/1.1 with a
     * bare 501 repeating the client's version ({@code FOO/1.1 501}), uncounted and unlogged. A
     * later HTTP/1 minor version is served as HTTP/1.1 (RFC 9110 §2.5); any other is a 505 over
     * HTTP/1.1, and the connection closes.
     */
    @Test
    void requestLineVersions_http12IsServedAsHttp11_othersAre505() throws Exception {
        withAccessLog((access, all) -> {
            assertThat(raw("GET /health HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n"))
                    .startsWith("HTTP/1.1 200").contains("\"status\":\"ok\"");
            assertThat(raw("GET /v1/models HTTP/1.9\r\nHost: x\r\nAuthorization: Bearer " + API_KEY + "\r\nConnection: close\r\n\r\n"))
                    .startsWith("HTTP/1.1 200").contains("\"object\":\"list\"");
            for (String version : List.of("HTTP/0.9", "HTTP/2.0", "HTTP/3.0", "FOO/1.1")) {
                // No Connection: close: the gateway closes it, or readAllBytes would wait out the timeout.
                String answer = raw("GET /v1/models " + version + "\r\nHost: x\r\n\r\n");
                assertThat(answer).as(version).startsWith("HTTP/1.1 505")
                        .contains("\"code\":\"http_version_not_supported\"", "version \\\"" + version + "\\\" is not served",
                                "\"type\":\"invalid_request_error\"")
                        .containsIgnoringCase("x-request-id: req_").containsIgnoringCase("x-should-retry: false");
            }
            assertThat(access.lines()).hasSize(5);
            assertThat(access.lines().getFirst()).contains("\"path\":\"/v1/models\"", "\"status\":200");
            assertThat(access.lines().subList(1, 5)).allSatisfy(line -> assertThat(line)
                    .contains("\"method\":\"GET\"", "\"path\":\"/v1/models\"", "\"status\":505", "\"error\":\"http_version_not_supported\""));
            assertThat(all.lines()).noneMatch(l -> l.startsWith("ERROR"));
            assertThat(net.call(HttpMethod.GET, "/metrics", null, null).body())
                    .contains("cocoon_http_responses_total{route=\"v1\",status=\"505\"} 4.0",
                            "cocoon_request_errors_total{code=\"http_version_not_supported\"} 4.0");
        });
    }

    /** What a test reads of the logs: the access log's lines, and every line logged. */
    @FunctionalInterface
    private interface LoggedBody {
        void run(LogCapture access, LogCapture all) throws Exception;
    }

    /** Runs {@code body} with the access log at INFO, which the tests' logback config (WARN and up) leaves out. */
    private static void withAccessLog(LoggedBody body) throws Exception {
        ch.qos.logback.classic.Logger accessLogger = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger("cocoon.access");
        ch.qos.logback.classic.Level levelBefore = accessLogger.getLevel();
        accessLogger.setLevel(ch.qos.logback.classic.Level.INFO);
        try (LogCapture access = new LogCapture("cocoon.access"); LogCapture all = new LogCapture(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
            body.run(access, all);
        } finally {
            accessLogger.setLevel(levelBefore);
        }
    }

    private static String requestId(String rawResponse) {
        return rawResponse.lines().filter(l -> l.toLowerCase(java.util.Locale.ROOT).startsWith("x-request-id: "))
                .findFirst().orElseThrow().substring("x-request-id: ".length());
    }

    /**
     * HTTP/1.0 has no Host requirement, and HAProxy's default {@code option httpchk} sends exactly
     * {@code OPTIONS / HTTP/1.0} with none: such requests are served as any other (they were a 400
     * naming HTTP/1.1: audit K, K-8).
     */
    @Test
    void http10WithoutHost_isServed_healthChecksAndApiAlike() throws Exception {
        net.addWorker(1000);
        try (LogCapture log = new LogCapture(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
            assertThat(raw("GET /health HTTP/1.0\r\n\r\n")).startsWith("HTTP/1.0 200").contains("\"status\":\"ok\"");
            assertThat(raw("HEAD /health HTTP/1.0\r\n\r\n")).startsWith("HTTP/1.0 200");
            assertThat(raw("GET /ready HTTP/1.0\r\n\r\n")).startsWith("HTTP/1.0 200");
            assertThat(raw("GET /metrics HTTP/1.0\r\n\r\n")).startsWith("HTTP/1.0 200").contains("cocoon_");
            // HAProxy's default check: no route takes OPTIONS /, and the answer says so, not "add a Host".
            assertThat(raw("OPTIONS / HTTP/1.0\r\n\r\n")).startsWith("HTTP/1.0 404").doesNotContain("Host");
            assertThat(raw("GET /v1/models HTTP/1.0\r\nAuthorization: Bearer " + API_KEY + "\r\n\r\n"))
                    .startsWith("HTTP/1.0 200").contains("\"synthetic\"");
            String body = chat("synthetic", false, "\"max_tokens\":2");
            assertThat(raw("POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer " + API_KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body))
                    .startsWith("HTTP/1.0 200").contains("\"completion_tokens\":2");
            // HTTP/1.0 has no chunks: the stream is the body up to the close.
            String stream = chat("synthetic", true, "\"max_tokens\":2");
            assertThat(raw("POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer " + API_KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: " + stream.length() + "\r\n\r\n" + stream))
                    .startsWith("HTTP/1.0 200").doesNotContainIgnoringCase("transfer-encoding").endsWith("data: [DONE]\n\n");
            assertThat(log.lines()).noneMatch(l -> l.startsWith("ERROR"));
        }
    }

    private String raw(String request) throws Exception {
        try (java.net.Socket socket = new java.net.Socket("127.0.0.1", net.gateway.port())) {
            socket.setSoTimeout(5_000);
            socket.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            return new String(socket.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.ISO_8859_1);
        }
    }

    /**
     * Audit T, T-4: a chunked body whose chunk size is not a number, or too large for one, is the
     * codec's complaint after the head: it was a dropped connection with no answer and an ERROR
     * with a stack trace per request. Now it is the 400 a malformed head gets, and the connection closes.
     */
    @Test
    void aMalformedChunkedBody_is400_andNoErrorInTheLog() throws Exception {
        try (LogCapture log = new LogCapture(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
            for (String size : new String[] {"zz", "ffffffffffffffffff"}) {
                String answer = raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY
                        + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + size + "\r\n{}\r\n");
                assertThat(answer).as(size).startsWith("HTTP/1.1 400").contains("\"type\":\"invalid_request_error\"",
                        "could not be read", "hunk size", "connection: close");
            }
            assertThat(log.lines()).noneMatch(l -> l.startsWith("ERROR"));
        }
    }

    /**
     * Review W, W-1: a body one HTTP/2 stream got wrong (longer than its content-length) closed the
     * whole connection, cutting the other streams on it, perhaps other clients' behind a proxy.
     * Only that stream is refused.
     */
    @Test
    void aBadBodyOnOneHttp2Stream_doesNotCutTheOtherStreamsOnItsConnection() throws Exception {
        net.addWorker(20);  // a 60-token answer runs ~3 s
        io.vertx.core.http.HttpClient h2 = net.vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        try {
            java.util.concurrent.atomic.AtomicBoolean streaming = new java.util.concurrent.atomic.AtomicBoolean();
            io.vertx.core.Future<String> other = net.onClientContext(() -> h2.request(TestNetwork.post("/v1/chat/completions", API_KEY)
                            .setHost("127.0.0.1").setPort(net.gateway.port()))
                    .compose(request -> request.send(chat("synthetic", true, "\"max_tokens\":60")))
                    .compose(response -> {
                        streaming.set(true);
                        return response.body().map(io.vertx.core.buffer.Buffer::toString);
                    }));
            TestNetwork.eventually("the other stream is under way", streaming::get);
            io.vertx.core.Future<Integer> bad = net.onClientContext(() -> h2.request(TestNetwork.post("/v1/chat/completions", API_KEY)
                            .setHost("127.0.0.1").setPort(net.gateway.port()).putHeader("content-length", "5"))
                    .compose(request -> {
                        request.exceptionHandler(e -> { });
                        return request.send("x".repeat(50)).map(io.vertx.core.http.HttpClientResponse::statusCode);
                    }));
            assertThat(TestNetwork.await(other)).contains("[DONE]");
        } finally {
            h2.close();
        }
    }

    /**
     * Audit T, T-1: a request refused before its body was read (here a 401) left its connection
     * open, and the gateway read and discarded whatever the client sent, at line rate, without a
     * bound. Now the answer says Connection: close and the connection closes shortly after it.
     */
    @Test
    void aRequestAnsweredBeforeItsBody_closesItsConnection_evenIfTheClientKeepsSending() throws Exception {
        try (java.net.Socket socket = new java.net.Socket("127.0.0.1", net.gateway.port())) {
            socket.setSoTimeout(10_000);
            java.io.OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 1000000000000\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            long start = System.nanoTime();
            Thread sender = Thread.ofVirtual().start(() -> {
                byte[] chunk = new byte[64 * 1024];
                try {
                    while (true) {
                        out.write(chunk);
                    }
                } catch (java.io.IOException closed) {
                    // the gateway closed the connection: what this test waits for
                }
            });
            byte[] answer = socket.getInputStream().readAllBytes();  // to the end: the gateway closes
            long closedAfterMs = java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            sender.join(10_000);
            assertThat(new String(answer, java.nio.charset.StandardCharsets.ISO_8859_1))
                    .startsWith("HTTP/1.1 401").contains("connection: close");
            assertThat(sender.isAlive()).as("the sender was cut off").isFalse();
            assertThat(closedAfterMs).isLessThan(8_000);
        }
    }

    /**
     * Audit T, T-5: HTTP/2 heads without their bodies cost a client nothing and held ~8 KB each
     * until their body deadline, before admission counted them: four connections held 360,000.
     * A key has at most 256 waiting per event loop; past it, 429 at once, and what is answered is freed.
     */
    @Test
    void headsWaitingForTheirBodies_areBoundedPerKey_pastIt429() {
        net.addWorker(1000);
        io.vertx.core.http.HttpClient h2 = net.vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        try {
            int heads = org.cocoonjvm.gateway.api.RequestBodies.MOST_BODIES_AWAITED + 4;
            java.util.List<io.vertx.core.Future<Integer>> statuses = new java.util.ArrayList<>();
            for (int i = 0; i < heads; i++) {
                statuses.add(net.onClientContext(() -> h2.request(TestNetwork.post("/v1/chat/completions", API_KEY).setHost("127.0.0.1")
                                .setPort(net.gateway.port()).putHeader("content-length", "100"))
                        .compose(request -> {
                            request.exceptionHandler(e -> { });
                            return request.sendHead().compose(v -> request.response());
                        })
                        .map(io.vertx.core.http.HttpClientResponse::statusCode)));
            }
            TestNetwork.eventually("the heads past the bound are answered", () -> statuses.stream()
                    .filter(f -> f.succeeded() && f.result() == 429).count() == 4);
            assertThat(statuses).filteredOn(io.vertx.core.Future::isComplete).hasSize(4);
        } finally {
            h2.close();
        }
    }

    /** Audit T, T-7: with two Authorization headers the first was taken; a proxy in front may have checked the other. */
    @Test
    void twoAuthorizationHeaders_are401_whicheverIsTheKey() throws Exception {
        net.addWorker(1000);
        for (String headers : new String[] {"Authorization: Bearer " + API_KEY + "\r\nAuthorization: Bearer sk-other",
                "Authorization: Bearer sk-other\r\nAuthorization: Bearer " + API_KEY}) {
            assertThat(raw("GET /v1/models HTTP/1.1\r\nHost: x\r\n" + headers + "\r\nConnection: close\r\n\r\n"))
                    .startsWith("HTTP/1.1 401");
        }
    }

    @Test
    void missingOrWrongKey_is401() {
        net.addWorker(1000);
        for (String key : new String[] {null, "sk-wrong"}) {
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", key, chat("synthetic", false, ""));
            assertThat(reply.status()).isEqualTo(401);
            assertThat(reply.json().getJsonObject("error").getString("type")).isEqualTo("authentication_error");
            assertThat(reply.response().getHeader("WWW-Authenticate")).isEqualTo("Bearer");
        }
    }

    @Test
    void invalidRequest_is400NamingTheParam() {
        net.addWorker(1000);
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"n\":3"));
        assertThat(reply.status()).isEqualTo(400);
        JsonObject error = reply.json().getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("param")).isEqualTo("n");
        assertThat(error.getString("message")).contains("3");

        TestNetwork.Reply broken = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, "{not json");
        assertThat(broken.status()).isEqualTo(400);
    }

    @Test
    void jsonSentWithAFormContentType_isReadAsJson_howeverLongOrFullOfAmpersands() {
        net.addWorker(1000);
        String prompt = "a & b = c, ".repeat(400);  // 4.4 KB, 400 ampersands: past the form decoder's limits
        for (String type : new String[] {"application/x-www-form-urlencoded", "multipart/form-data; boundary=x"}) {
            RequestOptions request = TestNetwork.post("/v1/chat/completions", API_KEY).putHeader("Content-Type", type);
            String user = ",\"user\":\"" + prompt + "\"";
            TestNetwork.Reply reply = await(net.reply(request, chat("synthetic", false, "\"max_tokens\":2" + user)));
            assertThat(reply.status()).as(type).isEqualTo(200);
            assertThat(reply.json().getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(2);
            TestNetwork.Reply bad = await(net.reply(request, chat("synthetic", false, "\"n\":2" + user)));
            assertThat(bad.status()).as(type).isEqualTo(400);
            assertThat(bad.json().getJsonObject("error").getString("param")).isEqualTo("n");
        }
    }

    @Test
    void promptPastTheContextWindow_is400ContextLengthExceeded_namingMessagesOrPrompt() {
        net.addWorker(1000);
        // The synthetic tokenizer makes a token of each word: 5000 words overflow its 4096-token window.
        String words = "word ".repeat(5000);
        TestNetwork.Reply chat = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, new JsonObject()
                .put("model", "synthetic")
                .put("messages", new JsonArray().add(new JsonObject().put("role", "user").put("content", words))).encode());
        TestNetwork.Reply completion = net.call(HttpMethod.POST, "/v1/completions", API_KEY,
                new JsonObject().put("model", "synthetic").put("prompt", words).encode());
        // A short prompt whose max_tokens leaves no room is the same error, streamed or not.
        TestNetwork.Reply maxTokens = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":4096"));

        assertContextLengthExceeded(chat, "messages");
        assertContextLengthExceeded(completion, "prompt");
        assertContextLengthExceeded(maxTokens, "messages");
    }

    /** OpenAI's answer to a request that does not fit the model. */
    private static void assertContextLengthExceeded(TestNetwork.Reply reply, String param) {
        assertThat(reply.status()).isEqualTo(400);
        JsonObject error = reply.json().getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("code")).isEqualTo("context_length_exceeded");
        assertThat(error.getString("param")).isEqualTo(param);
        assertThat(error.getString("message")).contains("context window is 4096");
    }

    @Test
    void unknownModel_is404() {
        net.addWorker(1000);
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("gpt-nope", false, ""));
        assertThat(reply.status()).isEqualTo(404);
        assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("model_not_found");
    }

    @Test
    void oversizedBody_is413() {
        net.addWorker(1000);
        String huge = chat("synthetic", false, "\"user\":\"" + "x".repeat(80 * 1024) + "\"");
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, huge);
        assertThat(reply.status()).isEqualTo(413);
        assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("payload_too_large");
    }

    @Test
    void compressedBody_is415_namingWhatToSend() {
        net.addWorker(1000);
        // Refused on the header: what the body holds never matters.
        TestNetwork.Reply reply = TestNetwork.await(net.reply(TestNetwork.post("/v1/chat/completions", API_KEY)
                .putHeader("Content-Encoding", "gzip"), chat("synthetic", false, "")));

        assertThat(reply.status()).isEqualTo(415);
        assertThat(reply.response().getHeader("Accept-Encoding")).isEqualTo("identity");
        JsonObject error = reply.json().getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo("unsupported_encoding");
        assertThat(error.getString("message")).contains("\"gzip\"").contains("uncompressed");
    }

    @Test
    void workerQueueFull_is503_beforeAnyByteIsStreamed() throws Exception {
        // One running slot, one waiting place: the third concurrent request finds no room.
        net.addWorker(20, 1, new SchedulerOptions(1, 512, 50));
        HttpClientResponse first = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents firstEvents = SseEvents.read(first);
        TestNetwork.eventually("the first request runs", () -> firstEvents.size() >= 1);
        var second = net.request(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, ""));
        TestNetwork.eventually("the second request waits on the worker",
                () -> net.workerStatus(net.workers.getFirst()).getJsonObject("load").getInteger("waiting") == 1);

        TestNetwork.Reply third = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        assertThat(third.status()).isEqualTo(503);
        assertThat(third.json().getJsonObject("error").getString("code")).isEqualTo("no_capacity");
        assertThat(second.isComplete()).isFalse();  // still queued when the third was refused
        first.request().connection().close();
        assertThat(TestNetwork.await(second).statusCode()).isEqualTo(200);
    }

    /** What the official OpenAI SDKs read before retrying: never a request that cannot succeed as sent. */
    @Test
    void refusalsARetryCannotFix_sayXShouldRetryFalse_andThoseWithRetryAfter_sayTrue() {
        net.addWorker(1000);
        String valid = chat("synthetic", false, "\"max_tokens\":2");
        TestNetwork.Reply[] unfixable = {
            net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"n\":3")),
            net.call(HttpMethod.POST, "/v1/chat/completions", "sk-wrong", valid),
            net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("gpt-nope", false, "")),
            net.call(HttpMethod.GET, "/v1/models/gpt-nope", API_KEY, null),
            net.call(HttpMethod.GET, "/v1/nothing-here", API_KEY, null),
            net.call(HttpMethod.GET, "/v1/chat/completions", API_KEY, null),
            net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"user\":\"" + "x".repeat(80 * 1024) + "\"")),
            TestNetwork.await(net.reply(TestNetwork.post("/v1/chat/completions", API_KEY).putHeader("Content-Encoding", "gzip"), valid)),
        };
        for (TestNetwork.Reply reply : unfixable) {
            assertThat(reply.response().getHeader("x-should-retry")).as(reply.status() + " " + reply.body()).isEqualTo("false");
        }
        assertThat(unfixable).extracting(TestNetwork.Reply::status).containsExactly(400, 401, 404, 404, 404, 405, 413, 415);

        TestNetwork.Reply ok = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, valid);
        assertThat(ok.status()).isEqualTo(200);
        assertThat(ok.response().getHeader("x-should-retry")).isNull();

        net.stopWorker(0);
        TestNetwork.eventually("the gateway dropped the worker", () -> net.gateway.registry().all().isEmpty());
        TestNetwork.Reply restarting = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, valid);
        assertThat(restarting.status()).isEqualTo(503);
        assertThat(restarting.response().getHeader("Retry-After")).isEqualTo("5");
        assertThat(restarting.response().getHeader("x-should-retry")).isEqualTo("true");
    }

    @Test
    void modelById_isTheListsEntry_orModelNotFound() {
        net.addWorker(1000);
        JsonObject listed = net.call(HttpMethod.GET, "/v1/models", API_KEY, null).json().getJsonArray("data").getJsonObject(0);

        TestNetwork.Reply one = net.call(HttpMethod.GET, "/v1/models/synthetic", API_KEY, null);
        assertThat(one.status()).isEqualTo(200);
        assertThat(one.json()).isEqualTo(listed);

        TestNetwork.Reply unknown = net.call(HttpMethod.GET, "/v1/models/org%2Fnope", API_KEY, null);
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(unknown.json().getJsonObject("error").getString("code")).isEqualTo("model_not_found");
        assertThat(unknown.json().getJsonObject("error").getString("message")).contains("'org/nope'");
        assertThat(net.call(HttpMethod.GET, "/v1/models/synthetic", null, null).status()).isEqualTo(401);
    }

    @Test
    void knownPathWithAnotherMethod_is405WithAllow_unknownPath_is404() {
        net.addWorker(1000);
        TestNetwork.Reply get = net.call(HttpMethod.GET, "/v1/chat/completions", API_KEY, null);
        assertThat(get.status()).isEqualTo(405);
        assertThat(get.response().getHeader("Allow")).isEqualTo("POST");
        assertThat(get.json().getJsonObject("error").getString("code")).isEqualTo("method_not_allowed");

        TestNetwork.Reply post = net.call(HttpMethod.POST, "/v1/models", API_KEY, "{}");
        assertThat(post.status()).isEqualTo(405);
        assertThat(post.response().getHeader("Allow")).isEqualTo("GET, HEAD");

        TestNetwork.Reply unknown = net.call(HttpMethod.GET, "/v1/nothing-here", API_KEY, null);
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(unknown.json().getJsonObject("error").getString("code")).isEqualTo("not_found");
    }

    @Test
    void head_isAnsweredWherever_getIs_withoutABody() {
        net.addWorker(1000);
        for (String path : new String[] {"/health", "/ready", "/metrics"}) {
            TestNetwork.Reply head = net.call(HttpMethod.HEAD, path, null, null);
            assertThat(head.status()).as(path).isEqualTo(200);
            assertThat(head.body()).as(path).isEmpty();
        }
        TestNetwork.Reply models = net.call(HttpMethod.HEAD, "/v1/models", API_KEY, null);
        assertThat(models.status()).isEqualTo(200);
        assertThat(models.response().getHeader("Content-Type")).isEqualTo("application/json");
        // The length its GET would have, which health checkers and caches compare (audit S, S-7).
        TestNetwork.Reply got = net.call(HttpMethod.GET, "/v1/models", API_KEY, null);
        assertThat(models.response().getHeader("Content-Length"))
                .isEqualTo(Integer.toString(got.body().getBytes(java.nio.charset.StandardCharsets.UTF_8).length));
        assertThat(net.call(HttpMethod.HEAD, "/v1/models", null, null).status()).isEqualTo(401);
    }

    @Test
    void browsers_preflightIsAnsweredWithoutAKey_andResponsesCarryCorsAndTheRequestId() {
        net.addWorker(1000);
        RequestOptions preflight = new RequestOptions().setMethod(HttpMethod.OPTIONS).setURI("/v1/chat/completions")
                .putHeader("Origin", "https://chat.example").putHeader("Access-Control-Request-Method", "POST")
                .putHeader("Access-Control-Request-Headers", "authorization,content-type,x-stainless-os");
        TestNetwork.Reply answer = TestNetwork.await(net.reply(preflight, null));
        assertThat(answer.status()).isBetween(200, 204);
        assertThat(answer.response().getHeader("Access-Control-Allow-Origin")).isEqualTo("*");
        assertThat(answer.response().getHeader("Access-Control-Allow-Methods")).contains("POST");
        assertThat(answer.response().getHeader("Access-Control-Allow-Headers")).contains("authorization", "x-stainless-os");

        RequestOptions post = TestNetwork.post("/v1/chat/completions", API_KEY).putHeader("Origin", "https://chat.example");
        TestNetwork.Reply reply = TestNetwork.await(net.reply(post, chat("synthetic", false, "\"max_tokens\":2")));
        assertThat(reply.status()).isEqualTo(200);
        assertThat(reply.response().getHeader("Access-Control-Allow-Origin")).isEqualTo("*");
        assertThat(reply.response().getHeader("Access-Control-Expose-Headers")).contains("x-request-id", "x-should-retry");
        assertThat(reply.response().getHeader("x-request-id")).isEqualTo(reply.json().getString("id"));
    }

    @Test
    void clientHangingUpMidBody_logsNoError() throws Exception {
        net.addWorker(1000);
        ch.qos.logback.classic.Logger root = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger("ROOT");
        ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> errors = new ch.qos.logback.core.read.ListAppender<>();
        errors.start();
        root.addAppender(errors);
        try {
            for (int i = 0; i < 3; i++) {
                try (Socket socket = new Socket("127.0.0.1", net.gateway.port())) {
                    socket.getOutputStream().write(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY
                            + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"mod").getBytes());
                    socket.getOutputStream().flush();
                    Thread.sleep(100);
                }
            }
            // The gateway still answers, and said nothing at ERROR about the hang-ups.
            assertThat(net.call(HttpMethod.GET, "/v1/models", API_KEY, null).status()).isEqualTo(200);
            Thread.sleep(200);
            assertThat(errors.list).noneMatch(e -> e.getLevel() == ch.qos.logback.classic.Level.ERROR);
        } finally {
            root.detachAppender(errors);
        }
    }

    @Test
    void bodyThatDoesNotArriveInTime_is408_andTheConnectionCloses() throws Exception {
        net.close();
        net = new TestNetwork(KeyLimits.UNLIMITED, new RelayOptions(2_000, 5_000, 60_000, 3, 64 * 1024, 300,
                RelayOptions.DEFAULT_STALL_TIMEOUT_MS), TestNetwork.START_BALANCE);
        net.addWorker(1000);
        try (Socket socket = new Socket("127.0.0.1", net.gateway.port())) {
            socket.setSoTimeout(5_000);
            socket.getOutputStream().write(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"mod").getBytes());
            socket.getOutputStream().flush();
            long start = System.nanoTime();
            String answer = new String(socket.getInputStream().readAllBytes());  // to the close

            assertThat(java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isBetween(200L, 3_000L);
            assertThat(answer).startsWith("HTTP/1.1 408").contains("\"code\":\"request_timeout\"");
        }
        // A body that arrives in time is unaffected, however long the answer then takes.
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":2")).status())
                .isEqualTo(200);
    }

    @Test
    void adminWorkers_needsAdminKey_andShowsEachWorker() {
        var worker = net.addWorker(1000);
        assertThat(net.call(HttpMethod.GET, "/admin/workers", API_KEY, null).status()).isEqualTo(401);

        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/admin/workers", ADMIN_KEY, null);
        assertThat(reply.status()).isEqualTo(200);
        JsonObject entry = reply.json().getJsonArray("workers").getJsonObject(0);
        assertThat(entry.getString("endpoint")).isEqualTo(worker.endpoint());
        assertThat(entry.getString("engine")).isEqualTo("synthetic");
        assertThat(entry.getBoolean("healthy")).isTrue();
        assertThat(entry.getString("attestation")).isEqualTo("none");
        assertThat(entry.getJsonArray("models").getString(0)).startsWith("synthetic@");

        net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":4"));
        TestNetwork.eventually("tokens served are counted", () -> net.gateway.registry().all().iterator().next().tokensServed() == 4);
    }
}
