package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** How the gateway relays under trouble: waits, failures, slow readers, deadlines. */
class RelayBehaviourTest {
    private TestNetwork net;

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
    }

    private static String text(List<SseEvents.Event> events) {
        StringBuilder text = new StringBuilder();
        for (SseEvents.Event e : events) {
            if (!e.data().equals("[DONE]")) {
                JsonObject chunk = new JsonObject(e.data());
                if (!chunk.getJsonArray("choices").isEmpty()) {
                    String content = chunk.getJsonArray("choices").getJsonObject(0).getJsonObject("delta").getString("content");
                    text.append(content == null ? "" : content);
                }
            }
        }
        return text.toString();
    }

    @Test
    void waitingForTheFirstToken_sendsKeepAliveComments() throws Exception {
        net = new TestNetwork(KeyLimits.UNLIMITED, new RelayOptions(100, 100, 60_000, 3, 64 * 1024), TestNetwork.START_BALANCE);
        net.addWorker(1);  // the first token comes after a one-second step
        long start = System.nanoTime();
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, "\"max_tokens\":2"));
        long headersMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        Future<Buffer> whole = response.body();  // before the resume: a chunk or the end let through first is lost to it
        response.resume();
        String body = await(whole).toString();

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(headersMs).as("status sent after the hold window, long before the first token").isLessThan(900);
        assertThat(body.indexOf(": keep-alive")).isNotNegative().isLessThan(body.indexOf("data: "));
        assertThat(body.strip()).endsWith("data: [DONE]");
    }

    @Test
    void silenceBetweenTokens_isFilledWithKeepAliveComments() throws Exception {
        net = new TestNetwork(KeyLimits.UNLIMITED, new RelayOptions(100, 100, 60_000, 3, 64 * 1024), TestNetwork.START_BALANCE);
        net.addWorker(new SyntheticEngine(2, 4, 4096), SchedulerOptions.DEFAULTS, 0);  // a token every 500 ms
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, "\"max_tokens\":3"));
        Future<Buffer> whole = response.body();  // before the resume: a chunk or the end let through first is lost to it
        response.resume();
        String body = await(whole).toString();

        int firstChunk = body.indexOf("data: ");
        int lastChunk = body.lastIndexOf("data: {\"id\"");
        assertThat(body.substring(firstChunk, lastChunk)).as("between the first chunk and the last").contains(": keep-alive");
        assertThat(body.strip()).endsWith("data: [DONE]");
    }

    @Test
    void workerFailingBeforeTheFirstToken_isReplacedByAnother() throws Exception {
        net = new TestNetwork();
        // Past the status hold (2 s), so that the response's head, and with it this test, goes on before it fails.
        net.addWorker(failingInItsFirstStep(4_000), SchedulerOptions.DEFAULTS, 0);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, "\"max_tokens\":4"));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("the failing worker has it", () -> net.gateway.registry().all().iterator().next().inFlight() == 1);
        net.addWorker(1000);

        assertServedByTheOther(sse);
    }

    @Test
    void workerStoppingBeforeTheFirstToken_isReplacedByAnother() throws Exception {
        net = new TestNetwork();
        var slow = net.addWorker(new SyntheticEngine(0.2, 4, 4096), SchedulerOptions.DEFAULTS, 0);  // first token after 5 s
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, "\"max_tokens\":4"));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("the slow worker runs it", () -> net.workerStatus(slow).getJsonObject("load").getInteger("running") == 1);
        net.addWorker(1000);

        net.stopWorker(0);  // grace 0: it fails its running sequence before any token

        assertServedByTheOther(sse);
    }

    private static void assertServedByTheOther(SseEvents sse) throws Exception {
        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        assertThat(events).noneMatch(e -> e.data().contains("\"error\""));
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");
        assertThat(usage.getInteger("completion_tokens")).isEqualTo(4);
    }

    /**
     * The model's only worker fails, or stops, before its first token and leaves: the request
     * failed on a worker (502 / UNAVAILABLE, or 503 shutting_down for a planned stop; not "no such
     * model"), and costs the account nothing: the worker bills no prompt, and the error shows no usage.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void onlyWorkerLeavingBeforeTheFirstToken_isAnError_thatCostsNothing(boolean planned) throws Exception {
        for (boolean stream : new boolean[] {true, false}) {
            net = new TestNetwork();
            // Stopping, its first token after 5 s; failing, its first step throws after 1 s.
            var worker = net.addWorker(planned ? new SyntheticEngine(0.2, 4, 4096) : failingInItsFirstStep(1_000),
                    SchedulerOptions.DEFAULTS, 0);
            Future<TestNetwork.Reply> reply = net.reply(TestNetwork.post("/v1/chat/completions", API_KEY),
                    chat("synthetic", stream, "\"max_tokens\":4"));

            if (planned) {
                TestNetwork.eventually("the worker runs it", () -> net.workerStatus(worker).getJsonObject("load").getInteger("running") == 1);
                net.stopWorker(0);
            }

            TestNetwork.Reply r = await(reply);
            // A worker's planned stop is no fault of its: the client is told to send it again, as at a gateway's stop.
            assertThat(r.status()).as(r.body()).isEqualTo(planned ? 503 : 502);
            assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo(planned ? "shutting_down" : "upstream_error");
            TestNetwork.eventually("the request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
            assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isZero();
            assertThat(r.json().containsKey("usage")).as("nothing was billed").isFalse();
            net.close();
        }
        net = null;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void onlyWorkerLeavingBeforeTheFirstToken_overGrpc_isUnavailable(boolean planned) throws Exception {
        net = new TestNetwork();
        var worker = net.addWorker(planned ? new SyntheticEngine(0.2, 4, 4096) : failingInItsFirstStep(1_000), SchedulerOptions.DEFAULTS, 0);
        InferenceGrpc.Call call = new InferenceGrpc(net).generate(API_KEY, InferenceGrpc.chat("synthetic").setMaxTokens(4).build());

        if (planned) {
            TestNetwork.eventually("the worker runs it", () -> net.workerStatus(worker).getJsonObject("load").getInteger("running") == 1);
            net.stopWorker(0);
        }

        call.ended.get(10, TimeUnit.SECONDS);
        assertThat(call.status).isEqualTo(io.vertx.grpc.common.GrpcStatus.UNAVAILABLE);
        assertThat(call.metadata("cocoon-error")).isEqualTo(planned ? "shutting_down" : "upstream_error");
    }

    /** A synthetic engine whose first step throws after {@code afterMs}, as a kernel error would: the worker's fault. */
    private static FailingEngine failingInItsFirstStep(long afterMs) {
        FailingEngine engine = new FailingEngine(new SyntheticEngine(200, 4, 4096));
        engine.stepMs = afterMs;
        engine.failing.set(true);
        return engine;
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void workerLeavingAfterTheFirstToken_endsWithAnErrorEventCarryingTheUsage_thenDone_andBillsWhatWasSent(boolean planned)
            throws Exception {
        net = new TestNetwork();
        FailingEngine engine = new FailingEngine(new SyntheticEngine(20, 4, 4096));
        net.addWorker(engine, SchedulerOptions.DEFAULTS, 0);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("two chunks arrived", () -> sse.size() >= 2);

        if (planned) {
            net.stopWorker(0);
        } else {
            engine.failing.set(true);
        }

        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        JsonObject error = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo(planned ? "shutting_down" : "upstream_error");
        assertThat(error.getString("message")).contains(planned ? "The worker is shutting down" : "injected kernel error");
        String counted = "cocoon_request_errors_total{code=\"" + (planned ? "shutting_down" : "upstream_error") + "\"} 1.0";
        TestNetwork.eventually("the error is counted by its code",
                () -> net.call(HttpMethod.GET, "/metrics", null, null).body().contains(counted));
        // Nothing is lost: the tokens that reached the client (and the prompt) are billed, and the
        // error event says so in its usage, as a stream that ends well does on its finish chunk. No
        // chunk without a choice: clients read choices[0] of each (audit M, M-1).
        assertThat(events.subList(0, events.size() - 2)).allSatisfy(e -> assertThat(new JsonObject(e.data())
                .getJsonArray("choices")).isNotEmpty());
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");
        long contentChunks = events.stream().filter(e -> e.data().contains("\"content\"")).count();
        assertThat(usage.getLong("completion_tokens")).isEqualTo(contentChunks);
        TestNetwork.eventually("the request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isPositive()
                .isEqualTo(usage.getLong("total_cost"));
    }

    @Test
    void workerThatFreezesBeforeTheFirstToken_isLeft_andTheRequestServedByAnother() throws Exception {
        net = new TestNetwork();
        net.addWorker(0.1);  // its first token would come after ten seconds
        long sent = System.nanoTime();
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":3"));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("the worker has the request",
                () -> net.gateway.registry().all().iterator().next().inFlight() == 1);
        net.addWorker(1000);
        net.freezeWorker(0);

        // Its connection stays up, but PINGs go unanswered: within three heartbeat intervals the
        // gateway gives up on it, and no token had reached the client, so another worker serves it.
        List<SseEvents.Event> events = sse.ended.get(20, TimeUnit.SECONDS);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent)).isLessThan(9_000);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(events).noneMatch(e -> e.data().contains("\"error\""));
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");
        assertThat(usage.getInteger("completion_tokens")).isEqualTo(3);
    }

    @Test
    void workerThatFrozeBeforeTheGatewayConnectedToIt_isLeft_andTheRequestServedByAnother() throws Exception {
        net = new TestNetwork();
        net.addWorker(1000);
        net.freezeWorker(0);  // registered, but the gateway has no connection to it yet: no PING can find it
        long sent = System.nanoTime();
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":3")));
        net.addWorker(1000);

        // The call's opening is bounded by three heartbeat intervals, then another worker serves it.
        List<SseEvents.Event> events = sse.ended.get(20, TimeUnit.SECONDS);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent)).isLessThan(9_000);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(events).noneMatch(e -> e.data().contains("\"error\""));
        assertThat(new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage").getInteger("completion_tokens"))
                .isEqualTo(3);
    }

    @Test
    void workerThatFreezesAfterTheFirstToken_endsTheStreamWithAnError_andBillsWhatWasSent() throws Exception {
        net = new TestNetwork();
        net.addWorker(new SyntheticEngine(20, 4, 4096, 100_000), SchedulerOptions.DEFAULTS, 0);
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":2000")));
        TestNetwork.eventually("two chunks arrived", () -> sse.size() >= 2);

        net.freezeWorker(0);

        List<SseEvents.Event> events = sse.ended.get(20, TimeUnit.SECONDS);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(new JsonObject(events.get(events.size() - 2).data()).getJsonObject("error").getString("code"))
                .isEqualTo("upstream_error");
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");  // in the error event
        long contentChunks = events.stream().filter(e -> e.data().contains("\"content\"")).count();
        assertThat(usage.getLong("completion_tokens")).isEqualTo(contentChunks);
        TestNetwork.eventually("the request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isEqualTo(usage.getLong("total_cost"));
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void workerLeavingMidReply_nonStreaming_isAnError_withTheUsageItWasBilledFor(boolean planned) throws Exception {
        net = new TestNetwork();
        FailingEngine engine = new FailingEngine(new SyntheticEngine(20, 4, 4096, 100_000));
        net.addWorker(engine, SchedulerOptions.DEFAULTS, 0);
        Future<TestNetwork.Reply> reply = net.reply(TestNetwork.post("/v1/chat/completions", API_KEY),
                chat("synthetic", false, "\"max_tokens\":2000"));
        TestNetwork.eventually("tokens were produced",
                () -> net.gateway.registry().all().iterator().next().inFlight() == 1);
        Thread.sleep(500);

        if (planned) {
            net.stopWorker(0);
        } else {
            engine.failing.set(true);
        }

        TestNetwork.Reply failed = await(reply);
        assertThat(failed.status()).isEqualTo(planned ? 503 : 502);
        assertThat(failed.json().getJsonObject("error").getString("code")).isEqualTo(planned ? "shutting_down" : "upstream_error");
        JsonObject usage = failed.json().getJsonObject("usage");
        assertThat(usage.getLong("completion_tokens")).isPositive();
        // Billed: an SDK's automatic retry would be billed again.
        assertThat(failed.response().getHeader("x-should-retry")).isEqualTo("false");
        TestNetwork.eventually("the request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isEqualTo(usage.getLong("total_cost"));
    }

    @Test
    void slowReader_getsEveryTokenIntact() throws Exception {
        net = new TestNetwork();
        net.addWorker(new SyntheticEngine(50_000, 4, 100_000, 60_000), SchedulerOptions.DEFAULTS, 1_000);
        String body = chat("synthetic", true, "\"seed\":5");

        List<SseEvents.Event> normal = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, body))
                .ended.get(20, TimeUnit.SECONDS);

        HttpClientResponse slow = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, body);  // paused: not read
        Thread.sleep(3_000);  // kernel buffers fill, then the gateway coalesces, then holds the worker stream
        List<SseEvents.Event> coalesced = SseEvents.read(slow).ended.get(20, TimeUnit.SECONDS);

        // Whether and how much the gateway merged depends on how much the kernel buffered; what must
        // hold either way is that a reader who stalls gets every token, in order, and a proper end.
        assertThat(text(coalesced)).isEqualTo(text(normal)).hasSizeGreaterThan(200_000);
        assertThat(coalesced.getLast().data()).isEqualTo("[DONE]");
    }

    @Test
    void readerThatStops_isDroppedAfterTheStallTimeout_andBilledForWhatWasProduced() throws Exception {
        net = new TestNetwork(KeyLimits.UNLIMITED, new RelayOptions(2_000, 5_000, 60_000, 3, 64 * 1024,
                RelayOptions.DEFAULT_BODY_TIMEOUT_MS, 500), TestNetwork.START_BALANCE);
        // A reply far longer than loopback's socket buffers hold, so it cannot end before they fill.
        var worker = net.addWorker(new SyntheticEngine(50_000, 4, 1_000_000, 500_000), SchedulerOptions.DEFAULTS, 1_000);

        HttpClientResponse stopped = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"seed\":5"));  // paused: not read until the gateway gave up

        // Loopback's socket buffers fill (megabytes: seconds on a busy machine), the gateway holds
        // text for half a second, then ends the request.
        TestNetwork.eventually("the worker stopped", 30_000,
                () -> net.workerStatus(worker).getJsonObject("load").getInteger("running") == 0);
        TestNetwork.eventually("the request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isPositive();
        // The connection was reset, not closed after a flush that would never come: reading now
        // meets the reset, never a proper end.
        CompletableFuture<Throwable> reset = new CompletableFuture<>();
        stopped.exceptionHandler(reset::complete).endHandler(v -> reset.completeExceptionally(new AssertionError("ended normally")));
        stopped.handler(chunk -> { }).resume();
        assertThat(reset.get(20, TimeUnit.SECONDS)).isNotNull();
        assertThat(net.call(HttpMethod.GET, "/metrics", null, null).body()).contains("code=\"" + Relay.STALLED + "\"");
    }

    @Test
    void pastTheDeadline_nonStreaming_is504() {
        net = new TestNetwork(KeyLimits.UNLIMITED, new RelayOptions(100, 100, 300, 3, 64 * 1024), TestNetwork.START_BALANCE);
        net.addWorker(2);
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, ""));
        assertThat(reply.status()).isEqualTo(504);
        assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("timeout");
        // Sent again, it would meet the same deadline, and be billed again for what its worker produced.
        assertThat(reply.response().getHeader("x-should-retry")).isEqualTo("false");
    }

    @Test
    void completionsEndpoint_streamsTextCompletions() throws Exception {
        net = new TestNetwork();
        net.addWorker(1000);
        String body = "{\"model\":\"synthetic\",\"prompt\":\"Once upon a time\",\"max_tokens\":5,\"stream\":true}";
        List<SseEvents.Event> events = SseEvents.read(net.send(HttpMethod.POST, "/v1/completions", API_KEY, body))
                .ended.get(10, TimeUnit.SECONDS);
        JsonObject first = new JsonObject(events.getFirst().data());
        assertThat(first.getString("object")).isEqualTo("text_completion");
        assertThat(first.getString("id")).startsWith("cmpl-");
        assertThat(first.getJsonArray("choices").getJsonObject(0).getString("text")).isNotEmpty();
        assertThat(events.getLast().data()).isEqualTo("[DONE]");

        JsonObject whole = net.call(HttpMethod.POST, "/v1/completions", API_KEY, body.replace("\"stream\":true", "\"stream\":false")).json();
        assertThat(whole.getString("object")).isEqualTo("text_completion");
        assertThat(whole.getJsonArray("choices").getJsonObject(0).getString("text").split(" ")).hasSize(5);
        assertThat(whole.getJsonObject("usage").getLong("total_cost")).isPositive();
    }

    @Test
    void healthAndReadiness() {
        net = new TestNetwork();
        assertThat(net.call(HttpMethod.GET, "/health", null, null).status()).isEqualTo(200);
        TestNetwork.Reply notReady = net.call(HttpMethod.GET, "/ready", null, null);
        assertThat(notReady.status()).isEqualTo(503);
        net.addWorker(1000);
        // Readiness follows registration and heartbeats; each look is bounded so one stuck
        // connection cannot stall the test (seen once under load; see the issue notes).
        TestNetwork.eventually("the gateway reports one ready worker", () -> {
            TestNetwork.Reply ready = net.tryCall(HttpMethod.GET, "/ready", 1_000);
            return ready != null && ready.status() == 200 && ready.json().getInteger("workers") == 1;
        });
    }

    @Test
    void gatewayShutdown_letsRunningStreamsFinish() throws Exception {
        net = new TestNetwork();
        net.addWorker(50);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, "\"max_tokens\":20"));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("the stream started", () -> sse.size() >= 1);

        CompletableFuture<Void> stopped = net.stopGateway()
                .toCompletionStage().toCompletableFuture();

        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(events).noneMatch(e -> e.data().contains("\"error\""));
        stopped.get(10, TimeUnit.SECONDS);
    }

    @Test
    void requestsStillRunningWhenTheGraceEnds_areEndedWithShuttingDown_andBilledForWhatWasProduced() throws Exception {
        net = TestNetwork.stopping(new ShutdownOptions(0, 2_000));
        // Replies of minutes, from a worker that would let them run for as long.
        net.addWorker(new SyntheticEngine(20, 4, 4096, 100_000), SchedulerOptions.DEFAULTS, 60_000);
        String body = chat("synthetic", true, "\"max_tokens\":2000");
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, body));
        Future<TestNetwork.Reply> whole = net.reply(TestNetwork.post("/v1/chat/completions", API_KEY),
                chat("synthetic", false, "\"max_tokens\":2000"));
        TestNetwork.eventually("the stream started", () -> sse.size() >= 2);

        long stopAsked = System.nanoTime();
        CompletableFuture<Void> stopped;
        try (LogCapture log = new LogCapture(GatewayNode.class)) {
            stopped = net.stopGateway().toCompletionStage().toCompletableFuture();
            TestNetwork.eventually("the grace ran out", () -> log.lines().stream().anyMatch(l -> l.contains("shutdown grace ends")));
            assertThat(log.lines().getFirst()).as("what the log says, in order: %s", log.lines()).startsWith("INFO gateway stopping");
        }

        // The stream is told why it ends, with its usage and [DONE], not cut with its connection.
        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        JsonObject error = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo("shutting_down");
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");  // in the error event
        long contentChunks = events.stream().filter(e -> e.data().contains("\"content\"")).count();
        assertThat(usage.getLong("completion_tokens")).isEqualTo(contentChunks);
        // A non-streaming one has sent no status yet: it gets a real one, and may go to another gateway.
        TestNetwork.Reply refused = await(whole);
        assertThat(refused.status()).isEqualTo(503);
        assertThat(refused.response().getHeader("Retry-After")).isEqualTo("1");
        assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("shutting_down");

        stopped.get(10, TimeUnit.SECONDS);
        // Ended a margin before the grace, so the stop took the grace, not the request's minutes.
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopAsked)).isBetween(900L, 5_000L);
        TestNetwork.eventually("both are settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isGreaterThan(usage.getLong("total_cost"));
    }

    /**
     * Its worker is inside a 5 s engine step, so it cannot answer the cancel before the gateway
     * closes its connections: the gateway waits for it only half the cut margin, then bills what it
     * counted and tells the client, rather than leaving it a bare close.
     */
    @Test
    void aStreamEndedByTheGrace_whileItsWorkerIsInALongStep_stillGetsItsErrorUsageAndDone() throws Exception {
        net = TestNetwork.stopping(new ShutdownOptions(0, 2_000));
        net.addWorker(new SyntheticEngine(0.2, 4, 4096), SchedulerOptions.DEFAULTS, 60_000);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        assertThat(response.statusCode()).as("the status went out when its hold ended").isEqualTo(200);
        SseEvents sse = SseEvents.read(response);

        net.stopGateway();

        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(new JsonObject(events.get(events.size() - 2).data()).getJsonObject("error").getString("code"))
                .isEqualTo("shutting_down");
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");  // in the error event
        assertThat(usage.getLong("prompt_tokens")).isPositive();
        TestNetwork.eventually("it is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isEqualTo(usage.getLong("total_cost"));
    }

    /**
     * Audit Q, Q-4: a gateway whose ledger lease another process took relayed for its whole drain
     * and grace, tokens nobody was billed for. Fenced, its stop skips both: running requests end at
     * once, still told why, with usage and [DONE].
     */
    @Test
    void aFencedGatewaysStop_endsRunningRequestsAtOnce_withoutItsDrainOrGrace() throws Exception {
        net = TestNetwork.stopping(new ShutdownOptions(5_000, 10_000));
        net.addWorker(new SyntheticEngine(20, 4, 4096, 100_000), SchedulerOptions.DEFAULTS, 60_000);
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":2000")));
        TestNetwork.eventually("the stream started", () -> sse.size() >= 2);

        long stopAsked = System.nanoTime();
        CompletableFuture<Void> stopped;
        try (LogCapture log = new LogCapture(GatewayNode.class)) {
            net.gateway.fenced();
            stopped = net.stopGateway().toCompletionStage().toCompletableFuture();
            List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
            assertThat(events.getLast().data()).isEqualTo("[DONE]");
            JsonObject error = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("error");
            assertThat(error.getString("code")).isEqualTo("shutting_down");
            assertThat(error.getString("message")).contains("another process took over its ledger");
            stopped.get(10, TimeUnit.SECONDS);
            assertThat(log.lines()).anyMatch(l -> l.contains(
                    "gateway fenced: stopping at once, no drain and no grace; its running requests end now"));
            assertThat(log.lines()).anyMatch(l -> l.contains("fenced: stopping 1 running request(s) on this event loop"));
            assertThat(log.lines()).noneMatch(l -> l.contains("6000 ms for running requests"));
        }
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopAsked)).as("neither the drain nor the grace")
                .isLessThan(4_000);
    }

    /**
     * Review U, U-1: a fence found while an ordinary stop was under way (SIGTERM first) changed
     * nothing: the stop had read the flag at its start, and its drain and grace ran on, billed to
     * nobody. Now what is left of them ends at the fence, in the drain as in the grace.
     */
    @ParameterizedTest
    @ValueSource(ints = {5_000, 0})
    void aFenceFoundWhileTheGatewayStops_endsWhatIsLeftOfItsDrainAndGrace(int drainMs) throws Exception {
        net = TestNetwork.stopping(new ShutdownOptions(drainMs, 10_000));
        net.addWorker(new SyntheticEngine(20, 4, 4096, 100_000), SchedulerOptions.DEFAULTS, 60_000);
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":2000")));
        TestNetwork.eventually("the stream started", () -> sse.size() >= 2);

        try (LogCapture log = new LogCapture(GatewayNode.class)) {
            CompletableFuture<Void> stopped = net.stopGateway().toCompletionStage().toCompletableFuture();
            // The undeploy runs on the gateway's loops: the fence must come once the stop is under way.
            TestNetwork.eventually("the stop has begun", () -> log.lines().stream().anyMatch(l -> l.contains("gateway stopping:")));
            Thread.sleep(300);  // into the drain, or the grace
            long fencedAt = System.nanoTime();
            net.gateway.fenced();
            List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
            long cutAfterMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - fencedAt);
            assertThat(events.getLast().data()).isEqualTo("[DONE]");
            assertThat(new JsonObject(events.get(events.size() - 2).data()).getJsonObject("error").getString("message"))
                    .contains("another process took over its ledger");
            stopped.get(10, TimeUnit.SECONDS);
            assertThat(cutAfterMs).as("ms from the fence to the stream's end (the grace alone is 6 s)").isLessThan(3_000);
            assertThat(log.lines()).anyMatch(l -> l.contains("gateway fenced while stopping: what is left of its drain and grace"));
        }
    }

    @Test
    void gatewayShutdownWithDrain_isUnreadyButServesUntilTheDrainEnds() throws Exception {
        net = TestNetwork.stopping(new ShutdownOptions(3_000, ShutdownOptions.DEFAULTS.graceMs()));
        net.addWorker(1000);
        assertThat(net.call(HttpMethod.GET, "/ready", null, null).status()).isEqualTo(200);

        long stopAsked = System.nanoTime();
        CompletableFuture<Void> stopped;
        try (LogCapture log = new LogCapture(GatewayNode.class)) {
            stopped = net.stopGateway().toCompletionStage().toCompletableFuture();
            // The operator reads that the gateway stops, and for how long, as it begins to: not once the drain is over.
            TestNetwork.eventually("the stop is logged", () -> log.lines().contains(
                    "INFO gateway stopping: /ready says so, 3000 ms of drain, then 6000 ms for running requests to finish"));
            assertThat(stopped).as("still draining").isNotDone();
        }
        // New connections (the client keeps none alive) are still taken: a load balancer reads 503
        // here and moves away, while clients that have not heard yet are served.
        TestNetwork.Reply ready = net.call(HttpMethod.GET, "/ready", null, null);
        assertThat(ready.status()).isEqualTo(503);
        assertThat(ready.json().getString("status")).isEqualTo("stopping");
        TestNetwork.Reply served = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":3"));
        assertThat(served.status()).isEqualTo(200);
        assertThat(stopped).as("still draining").isNotDone();

        stopped.get(15, TimeUnit.SECONDS);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopAsked)).isGreaterThanOrEqualTo(3_000);
        assertThat(net.tryCall(HttpMethod.GET, "/ready", 1_000)).as("the port is closed").isNull();
    }

    @Test
    void clientDisconnect_reachesTheWorkerAtOnce() throws Exception {
        net = new TestNetwork();
        var worker = net.addWorker(50);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("a chunk arrived", () -> sse.size() >= 1);

        long closed = System.nanoTime();
        response.request().connection().close();
        TestNetwork.eventually("the worker stopped", () -> net.workerStatus(worker).getJsonObject("load").getInteger("running") == 0);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - closed);
        // The gateway resets the call at once; the worker drops it at its next 20 ms step. The bound
        // is loose for a loaded CI machine; the measured latency is in docs/benchmarks.md.
        assertThat(ms).isLessThan(1_000);
    }

    /**
     * A worker whose streams were all cancelled still has its speed measured: it used to count
     * only requests that finished on their own, so such a worker stayed "unknown" to the speed
     * weighting of routing (audit H, H-7).
     */
    @Test
    void cancelledStreams_stillMeasureTheWorkersSpeed() throws Exception {
        net = new TestNetwork();
        net.addWorker(50);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("a few tokens arrived", () -> sse.size() >= 5);

        response.request().connection().close();

        TestNetwork.eventually("the worker's speed is measured", () -> net.call(HttpMethod.GET, "/admin/workers",
                TestNetwork.ADMIN_KEY, null).json().getJsonArray("workers").getJsonObject(0).getDouble("tokens_per_s") > 0);
        double speed = net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json().getJsonArray("workers")
                .getJsonObject(0).getDouble("tokens_per_s");
        assertThat(speed).isBetween(20.0, 100.0);  // 50 tokens a second, on a loaded machine
    }
}
