package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.cocoonjvm.gateway.relay.AccessLog;
import org.cocoonjvm.protocol.grpc.InferenceGrpcClient;
import org.cocoonjvm.protocol.grpc.ModelsRequest;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.gateway.relay.RequestOutcome;
import org.cocoonjvm.protocol.openai.ServiceTier;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** The {@code cocoon.access} log: one JSON line per request, and never a word of its text. */
class AccessLogTest {
    private static final int MOST_CHARS = 256;
    private final Logger access = (Logger) LoggerFactory.getLogger("cocoon.access");
    private final ListAppender<ILoggingEvent> lines = new ListAppender<>();
    private Level levelBefore;
    private TestNetwork net;

    @BeforeEach
    void capture() {
        levelBefore = access.getLevel();
        access.setLevel(Level.INFO);
        lines.start();
        access.addAppender(lines);
        net = new TestNetwork();
    }

    @AfterEach
    void release() {
        net.close();
        access.detachAppender(lines);
        access.setLevel(levelBefore);
    }

    @Test
    void streamedRequest_oneJsonLine_withItsNumbers_andNoText() throws Exception {
        net.addWorker(1000);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":5"));
        List<SseEvents.Event> events = SseEvents.read(response).ended.get(10, TimeUnit.SECONDS);
        JsonObject usageChunk = new JsonObject(events.get(events.size() - 2).data());
        String completion = SseEvents.text(events);
        TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);

        String line = lines.list.getFirst().getFormattedMessage();
        JsonObject logged = new JsonObject(line);
        assertThat(Instant.parse(logged.getString("time"))).isBetween(Instant.now().minusSeconds(60), Instant.now());
        assertThat(logged.getString("request_id")).isEqualTo(usageChunk.getString("id"));
        // Which API it came by, in the same fields as a refusal's line (audit V, V-12).
        assertThat(logged.getString("method")).isEqualTo("POST");
        assertThat(logged.getString("path")).isEqualTo("/v1/chat/completions");
        assertThat(logged.getString("key")).isEqualTo("test-key");
        assertThat(logged.getString("model")).isEqualTo("synthetic");
        assertThat(logged.getString("tier")).isEqualTo("default");
        assertThat(logged.getBoolean("stream")).isTrue();
        assertThat(logged.getString("worker")).isEqualTo("worker-1");
        assertThat(logged.getInteger("status")).isEqualTo(200);
        assertThat(logged.getString("finish_reason")).isEqualTo("length");
        assertThat(logged.getLong("completion_tokens")).isEqualTo(usageChunk.getJsonObject("usage").getLong("completion_tokens"));
        assertThat(logged.getLong("prompt_tokens")).isEqualTo(usageChunk.getJsonObject("usage").getLong("prompt_tokens"));
        assertThat(logged.getLong("cost_nanoton")).isPositive();
        assertThat(logged.getDouble("ttft_ms")).isPositive();
        assertThat(logged.getDouble("overhead_ms")).isPositive().isLessThan(logged.getDouble("ttft_ms"));
        assertThat(logged.getDouble("total_ms")).isGreaterThanOrEqualTo(logged.getDouble("ttft_ms"));
        assertThat(logged.getBoolean("client_gone")).isFalse();
        assertThat(line).doesNotContain("tell me about cocoon");
        assertThat(completion).isNotBlank();
        // Single words can be field values too (the synthetic engine says "synthetic"); two in a row cannot.
        String[] words = completion.trim().split(" ");
        assertThat(words).hasSizeGreaterThan(1);
        for (int i = 1; i < words.length; i++) {
            assertThat(line).doesNotContain(words[i - 1] + " " + words[i]);
        }
    }

    @Test
    void totalTime_endsWhenTheClientHadTheLastByte_settlementIncluded() {
        net.close();
        // Every ledger call takes 400 ms: the reservation before the relay, the settlement that the
        // final usage waits for after it.
        Executor slowLedger = task -> CompletableFuture.runAsync(task, CompletableFuture.delayedExecutor(400, TimeUnit.MILLISECONDS));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new InMemoryAccountBook(Clock.systemUTC()), slowLedger);
        net.addWorker(1000);

        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":3"));
        assertThat(reply.status()).isEqualTo(200);
        TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);
        assertThat(new JsonObject(lines.list.getFirst().getFormattedMessage()).getDouble("total_ms")).isGreaterThanOrEqualTo(800.0);
    }

    @Test
    void aBodyThatDoesNotArriveInTime_getsIts408Line() throws Exception {
        net.close();
        net = new TestNetwork(KeyLimits.UNLIMITED, new RelayOptions(2_000, 5_000, 60_000, 3, 64 * 1024, 300,
                RelayOptions.DEFAULT_STALL_TIMEOUT_MS), TestNetwork.START_BALANCE);
        try (Socket socket = new Socket("127.0.0.1", net.gateway.port())) {
            socket.setSoTimeout(5_000);
            socket.getOutputStream().write(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY
                    + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{").getBytes(StandardCharsets.US_ASCII));
            assertThat(new String(socket.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)).startsWith("HTTP/1.1 408");
        }

        TestNetwork.eventually("the 408 is logged", () -> lines.list.size() == 1);
        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getInteger("status")).isEqualTo(408);
        assertThat(logged.getString("error")).isEqualTo("request_timeout");
        assertThat(logged.getString("key")).isEqualTo("test-key");
    }

    @Test
    void requestsRefusedBeforeARelay_andOtherApiCalls_getALineEach_healthChecksNone() {
        net.addWorker(1000);
        net.call(HttpMethod.POST, "/v1/chat/completions", "sk-wrong", chat("synthetic", false, ""));
        net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"n\":2"));
        net.call(HttpMethod.GET, "/v1/models", API_KEY, null);
        net.call(HttpMethod.GET, "/health", null, null);
        net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("M".repeat(10_000), false, ""));

        TestNetwork.eventually("four lines", () -> lines.list.size() == 4);
        List<JsonObject> logged = lines.list.stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
        assertThat(logged.get(0).getInteger("status")).isEqualTo(401);
        assertThat(logged.get(0).getString("error")).isEqualTo("invalid_api_key");
        assertThat(logged.get(0).getString("key")).isNull();
        assertThat(logged.get(0).getString("path")).isEqualTo("/v1/chat/completions");
        assertThat(logged.get(1).getInteger("status")).isEqualTo(400);
        assertThat(logged.get(1).getString("error")).isEqualTo("invalid_request_error");
        assertThat(logged.get(1).getString("key")).isEqualTo("test-key");
        assertThat(logged.get(1).getString("method")).isEqualTo("POST");
        assertThat(logged.get(2).getInteger("status")).isEqualTo(200);
        assertThat(logged.get(2).getString("path")).isEqualTo("/v1/models");
        assertThat(logged.get(2).getString("error")).isNull();
        assertThat(logged.get(2).getDouble("total_ms")).isNotNegative();
        // An unknown model reaches the relay, which logs it; a name a client chose is cut short.
        assertThat(logged.get(3).getInteger("status")).isEqualTo(404);
        assertThat(logged.get(3).getString("model")).hasSize(AccessLogTest.MOST_CHARS + 1).endsWith("…");
        assertThat(lines.list.get(3).getFormattedMessage()).hasSizeLessThan(2_000);
    }

    /** An SDK's {@code error.requestID} (the {@code x-request-id} header) finds the request's line, whatever answered it. */
    @Test
    void everyApiResponse_carriesARequestId_andItsLogLineTheSame() {
        net.addWorker(1000);
        List<TestNetwork.Reply> replies = List.of(
                net.call(HttpMethod.POST, "/v1/chat/completions", "sk-wrong", chat("synthetic", false, "")),
                net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"temperature\":9")),
                net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                        chat("synthetic", false, "\"user\":\"" + "x".repeat(80 * 1024) + "\"")),
                await(net.reply(TestNetwork.post("/v1/chat/completions", API_KEY).putHeader("Content-Encoding", "gzip"),
                        chat("synthetic", false, ""))),
                net.call(HttpMethod.GET, "/v1/nothing-here", API_KEY, null),
                net.call(HttpMethod.GET, "/v1/models", API_KEY, null),
                net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("gpt-nope", false, "")),
                net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":2")));

        TestNetwork.eventually("a line each", () -> lines.list.size() == replies.size());
        List<JsonObject> logged = lines.list.stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
        assertThat(replies).extracting(TestNetwork.Reply::status).containsExactly(401, 400, 413, 415, 404, 200, 404, 200);
        for (int i = 0; i < replies.size(); i++) {
            String id = replies.get(i).response().getHeader("x-request-id");
            assertThat(id).as(replies.get(i).body()).isNotBlank();
            assertThat(logged.get(i).getString("request_id")).as(logged.get(i).encode()).isEqualTo(id);
        }
        // Refusals have ids of their own; a completion's is its chunks' id, as before.
        assertThat(replies.get(1).response().getHeader("x-request-id")).startsWith("req_");
        assertThat(replies.getLast().response().getHeader("x-request-id")).isEqualTo(replies.getLast().json().getString("id"))
                .startsWith("chatcmpl-");
        assertThat(replies.stream().map(r -> r.response().getHeader("x-request-id")).distinct()).hasSize(replies.size());
    }

    @Test
    void grpcCallsRefusedBeforeARelay_andModelsCalls_getALineEach() {
        net.addWorker(1000);
        InferenceGrpc grpc = new InferenceGrpc(net);
        InferenceGrpc.Call refused = grpc.call("sk-wrong", InferenceGrpc.chat("synthetic").build());
        grpc.call(API_KEY, InferenceGrpc.chat("synthetic").setMaxTokens(0).build());
        await(net.onClientContext(() -> grpc.client().request(grpc.gateway(), InferenceGrpcClient.Models).compose(request -> {
            request.headers().set("authorization", "Bearer " + API_KEY);
            return request.send(ModelsRequest.getDefaultInstance());
        }).compose(response -> response.last())));

        TestNetwork.eventually("three lines", () -> lines.list.size() == 3);
        List<JsonObject> logged = lines.list.stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
        assertThat(logged.get(0).getString("path")).isEqualTo("/cocoon.v1.Inference/Generate");
        assertThat(logged.get(0).getInteger("status")).isEqualTo(401);
        assertThat(logged.get(0).getString("error")).isEqualTo("invalid_api_key");
        assertThat(logged.get(0).getString("key")).isNull();
        assertThat(logged.get(1).getInteger("status")).isEqualTo(400);
        assertThat(logged.get(1).getString("key")).isEqualTo("test-key");
        assertThat(logged.get(1).getString("model")).isEqualTo("synthetic");
        assertThat(logged.get(2).getString("path")).isEqualTo("/cocoon.v1.Inference/Models");
        assertThat(logged.get(2).getInteger("status")).isEqualTo(200);
        // A refused call has an id too, in its metadata as an admitted one's, and in its line.
        assertThat(logged).allSatisfy(line -> assertThat(line.getString("request_id")).startsWith("req_"));
        assertThat(refused.metadata("cocoon-request-id")).isEqualTo(logged.get(0).getString("request_id"));
    }

    /**
     * A client that left before any response head went out was served nothing: 499, nginx's
     * "client closed request", not 200. One that left after the head (a stream's first chunk) got its 200.
     */
    @Test
    void aClientThatLeavesBeforeTheResponseHead_isLogged499_andAfterIt200() {
        net.addWorker(20);  // a full synthetic reply takes over a second
        HttpClientRequest waiting = net.unanswered(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, ""));
        TestNetwork.eventually("the worker runs it", () -> net.workerStatus(net.workers.getFirst()).getJsonObject("load").getInteger("running") == 1);
        waiting.connection().close();
        TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);
        HttpClientResponse streamed = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(streamed);
        TestNetwork.eventually("two chunks arrived", () -> sse.size() >= 2);
        streamed.request().connection().close();
        TestNetwork.eventually("the stream is logged", () -> lines.list.size() == 2);

        List<JsonObject> logged = lines.list.stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
        assertThat(logged.get(0).getInteger("status")).isEqualTo(499);
        assertThat(logged.get(0).getBoolean("client_gone")).isTrue();
        assertThat(logged.get(0).getString("worker")).isEqualTo("worker-1");
        assertThat(logged.get(1).getInteger("status")).isEqualTo(200);
        assertThat(logged.get(1).getBoolean("client_gone")).isTrue();
        // Both were cancelled at their worker, which answered with its final count.
        assertThat(logged).allSatisfy(line -> assertThat(line.getDouble("cancel_ms")).isNotNull().isNotNegative());
    }

    /**
     * Audit T, T-3: an HTTP/2 client that resets its stream mid-body left as surely as an HTTP/1
     * one that closes its connection, but was logged 200 and counted a 200 response, with an ERROR
     * ("Unhandled exception in router") for each, as many as 100,000 per connection. Now it is 499,
     * client gone, and nothing is logged beside its line.
     */
    @Test
    void anHttp2StreamResetMidBody_isLogged499_withoutAnError() throws Exception {
        io.vertx.core.http.HttpClient h2 = net.vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        try (LogCapture log = new LogCapture(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
            HttpClientRequest request = await(net.onClientContext(() -> h2.request(TestNetwork.post("/v1/chat/completions", API_KEY)
                    .setHost("127.0.0.1").setPort(net.gateway.port()).putHeader("content-length", "1000"))));
            request.exceptionHandler(e -> { });  // its own reset, which the client would log
            await(request.write("{\"model\":"));
            Thread.sleep(100);  // the head and the start of the body are in
            request.reset();
            TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);
            JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
            assertThat(logged.getInteger("status")).isEqualTo(499);
            assertThat(logged.getBoolean("client_gone")).isTrue();
            Thread.sleep(100);
            assertThat(log.lines()).noneMatch(l -> l.startsWith("ERROR") || l.startsWith("WARN"));
        } finally {
            h2.close();
        }
    }

    /** A stream's status is held until its first token: a client that leaves in that hold got no head either. */
    @Test
    void aStreamWhoseClientLeavesBeforeItsFirstToken_isLogged499() {
        net.addWorker(new SyntheticEngine(0.2, 4, 4096), SchedulerOptions.DEFAULTS, 0);  // first token after 5 s
        HttpClientRequest waiting = net.unanswered(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", true, ""));
        TestNetwork.eventually("the worker runs it", () -> net.workerStatus(net.workers.getFirst()).getJsonObject("load").getInteger("running") == 1);

        waiting.connection().close();

        TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);
        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getInteger("status")).isEqualTo(499);
        assertThat(logged.getBoolean("client_gone")).isTrue();
    }

    /** Gone while its funds were reserved: no relay ran, one line says so. */
    @Test
    void aClientThatLeavesWhileItsReservationIsMade_isLoggedOnce_499() throws Exception {
        net.close();
        Executor slowLedger = task -> CompletableFuture.runAsync(task, CompletableFuture.delayedExecutor(400, TimeUnit.MILLISECONDS));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new InMemoryAccountBook(Clock.systemUTC()), slowLedger);
        net.addWorker(1000);
        HttpClientRequest waiting = net.unanswered(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, ""));
        Thread.sleep(150);  // the body is in and the reservation waits on the ledger

        waiting.connection().close();

        TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);
        TestNetwork.eventually("its reservation is released", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        Thread.sleep(200);  // no second line follows
        assertThat(lines.list).hasSize(1);
        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getInteger("status")).isEqualTo(499);
        assertThat(logged.getInteger("attempts")).isZero();
        assertThat(logged.getBoolean("client_gone")).isTrue();
    }

    /** Gone during the wait for a running request of its key to end, and refused after it: still nothing went out. */
    @Test
    void aClientThatLeavesDuringTheConcurrencyWait_isLoggedOnce_499() throws Exception {
        net.close();
        net = new TestNetwork(new KeyLimits(0, 0, 1), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(20);
        HttpClientResponse running = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents.read(running);
        HttpClientRequest waiting = net.unanswered(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, ""));
        Thread.sleep(40);  // within the 100 ms the gateway waits for the running stream to end

        waiting.connection().close();

        TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);
        Thread.sleep(300);  // the wait is over: no second line follows
        assertThat(lines.list).hasSize(1);
        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getInteger("status")).as(logged.encode()).isEqualTo(499);
        assertThat(logged.getBoolean("client_gone")).isTrue();
        assertThat(logged.getString("request_id")).as("named, though no response carried it").startsWith("req_");
        // Nor is its refusal counted as a response sent.
        assertThat(Exposition.parse(net.call(HttpMethod.GET, "/metrics", null, null).body())
                .get("cocoon_http_responses_total", "route", "v1", "status", "429")).isZero();
        running.request().connection().close();
    }

    /** A gRPC call's status goes out in its trailers: a call cancelled before them has the log's 499 too. */
    @Test
    void aGrpcCallCancelledBeforeItsStatus_isLogged499() {
        net.addWorker(20);
        InferenceGrpc.Call call = new InferenceGrpc(net).generate(API_KEY, InferenceGrpc.chat("synthetic").build());
        TestNetwork.eventually("two deltas arrived", () -> call.deltas().size() >= 2);

        call.request.cancel();

        TestNetwork.eventually("the call is logged", () -> lines.list.size() == 1);
        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getInteger("status")).isEqualTo(499);
        assertThat(logged.getBoolean("client_gone")).isTrue();
        assertThat(logged.getString("path")).isEqualTo("/cocoon.v1.Inference/Generate");
    }

    /** A refusal's line names the model the body asked for, as a 402's does; cut short like any string a client chose. */
    @Test
    void aRequestRefusedByValidation_namesTheModelItsBodyNamed() {
        net.addWorker(1000);
        net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"temperature\":9"));
        net.call(HttpMethod.POST, "/v1/completions", API_KEY, "{\"model\":\"" + "M".repeat(10_000) + "\",\"prompt\":\"\"}");
        net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, "{\"model\":42,\"messages\":[]}");
        new InferenceGrpc(net).call(API_KEY, InferenceGrpc.chat("synthetic").setMaxTokens(0).build());
        new InferenceGrpc(net).call(API_KEY, InferenceGrpc.chat("").build());

        TestNetwork.eventually("five lines", () -> lines.list.size() == 5);
        List<JsonObject> logged = lines.list.stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
        assertThat(logged).extracting(line -> line.getInteger("status")).containsOnly(400);
        assertThat(logged.get(0).getString("model")).isEqualTo("synthetic");
        assertThat(logged.get(1).getString("model")).hasSize(AccessLogTest.MOST_CHARS + 1).endsWith("…");
        assertThat(logged.get(2).getValue("model")).isNull();  // not a string: no model was named
        assertThat(logged.get(3).getString("model")).isEqualTo("synthetic");
        assertThat(logged.get(4).getValue("model")).isNull();  // proto3's "" is a model not named
    }

    /** Its worker stopped before the first token (and bills nothing): the line still names that worker. */
    @Test
    void aRequestWhoseWorkerStoppedBeforeItsFirstToken_namesThatWorker() {
        var slow = net.addWorker(new SyntheticEngine(0.2, 4, 4096), SchedulerOptions.DEFAULTS, 0);  // first token after 5 s
        var reply = net.reply(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, "\"max_tokens\":4"));
        TestNetwork.eventually("the worker runs it", () -> net.workerStatus(slow).getJsonObject("load").getInteger("running") == 1);

        net.stopWorker(0);

        assertThat(await(reply).status()).isEqualTo(503);
        TestNetwork.eventually("the request is logged", () -> lines.list.size() == 1);
        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getString("worker")).isEqualTo("worker-1");
        assertThat(logged.getString("error")).as("a planned stop, not a fault").isEqualTo("shutting_down");
        assertThat(logged.getLong("cost_nanoton")).isZero();
    }

    @Test
    void aHead_isLoggedAsAHead_andACorsPreflightGetsALine() {
        TestNetwork.Reply head = net.call(HttpMethod.HEAD, "/v1/models", API_KEY, null);
        RequestOptions preflight = new RequestOptions().setMethod(HttpMethod.OPTIONS).setURI("/v1/chat/completions")
                .putHeader("Origin", "https://chat.example").putHeader("Access-Control-Request-Method", "POST");
        TestNetwork.Reply answer = await(net.reply(preflight, null));
        assertThat(answer.status()).isEqualTo(204);

        TestNetwork.eventually("two lines", () -> lines.list.size() == 2);
        List<JsonObject> logged = lines.list.stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
        assertThat(logged.get(0).getString("method")).isEqualTo("HEAD");
        assertThat(logged.get(0).getString("path")).isEqualTo("/v1/models");
        assertThat(logged.get(0).getInteger("status")).isEqualTo(200);
        assertThat(logged.get(1).getString("method")).isEqualTo("OPTIONS");
        assertThat(logged.get(1).getInteger("status")).isEqualTo(204);
        assertThat(logged.get(1).getString("key")).isNull();
        // Rerouted as a GET, a HEAD still gets one id, the one its line has.
        assertThat(logged.get(0).getString("request_id")).isEqualTo(head.response().getHeader("x-request-id")).isNotNull();
        assertThat(logged.get(1).getString("request_id")).isEqualTo(answer.response().getHeader("x-request-id")).isNotNull();
    }

    /** Audit V, V-7: a scanner probing paths outside the API leaves a trace, its path cut short as a model's is. */
    @Test
    void aPathNoRouteTakes_getsA404Line_itsPathCutShort() {
        String path = "/" + "p".repeat(1_000);
        assertThat(net.call(HttpMethod.GET, path, null, null).status()).isEqualTo(404);

        TestNetwork.eventually("one line", () -> lines.list.size() == 1);
        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getInteger("status")).isEqualTo(404);
        assertThat(logged.getString("error")).isEqualTo("not_found");
        assertThat(logged.getString("method")).isEqualTo("GET");
        assertThat(logged.getString("path")).hasSize(MOST_CHARS + 1).startsWith("/ppp").endsWith("…");
    }

    @Test
    void aLine_takesItsTimeFromTheClock_andNullsWhatNeverHappened() {
        Instant ended = Instant.parse("2026-11-22T12:00:00.123456789Z");
        new AccessLog(Clock.fixed(ended, ZoneOffset.UTC)).finished(new RequestOutcome("req-1", "key-1", "/v1/completions", "m",
                ServiceTier.FLEX, false, null, 1, 503, "no_capacity", null, 0, 0, 0, -1, -1, -1, 2_000_000, false, -1, 0, 0));

        JsonObject logged = new JsonObject(lines.list.getFirst().getFormattedMessage());
        assertThat(logged.getString("time")).isEqualTo("2026-11-22T12:00:00.123456Z");
        assertThat(logged.getString("tier")).isEqualTo("flex");
        assertThat(logged.getString("method")).isEqualTo("POST");
        assertThat(logged.getString("path")).isEqualTo("/v1/completions");
        assertThat(logged.getString("worker")).isNull();
        assertThat(logged.getString("error")).isEqualTo("no_capacity");
        assertThat(logged.getValue("ttft_ms")).isNull();
        assertThat(logged.getValue("overhead_ms")).isNull();
        assertThat(logged.getValue("cancel_ms")).isNull();
        assertThat(logged.getDouble("total_ms")).isEqualTo(2.0);
    }
}
