package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.grpc.common.GrpcErrorException;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.Slot;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.Scheduler;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Audit V, V-3 and V-2: the token and cost counters move while a stream runs, and end at exactly
 * what its access-log line says, however it ended; a stopping gateway's port still answers
 * {@code /metrics} through its grace, and its last scrape has what the grace's streams did.
 */
class LiveMetricsTest {
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
    }

    @AfterEach
    void release() {
        if (net != null) {
            net.close();
        }
        access.detachAppender(lines);
        access.setLevel(levelBefore);
    }

    @Test
    void aLongStream_countsItsTokensAndCostWhileItRuns_andEndsAtItsAccessLogLine() throws Exception {
        net = new TestNetwork();  // payment rounds every 32 tokens or 200 ms: each checkpoints the stream's cost
        net.addWorker(new SyntheticEngine(40, 4, 4096, 100_000), SchedulerOptions.DEFAULTS, 2_000);  // a long reply
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":120")));  // 3 s
        TestNetwork.eventually("a few chunks arrived", () -> sse.size() >= 12);

        int seen = sse.size();
        Exposition during = scrape();
        assertThat(sse.ended).as("still streaming").isNotDone();
        // Counted before each delta goes out: at least a token for each chunk the client has.
        assertThat(during.get("cocoon_generation_tokens_total", "model", "synthetic")).isGreaterThanOrEqualTo(seen - 1.0);
        TestNetwork.eventually("a payment round's checkpoint counted some of its cost",
                () -> scrape().get("cocoon_billed_nanoton_total", "model", "synthetic") > 0);
        assertThat(sse.ended).as("still streaming").isNotDone();
        assertThat(scrape().value("cocoon_request_attempts_total").orElse(0)).as("not reported yet").isZero();

        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");
        JsonObject line = accessLine();
        Exposition end = scrape();
        assertThat(line.getLong("completion_tokens")).isEqualTo(usage.getLong("completion_tokens")).isEqualTo(120);
        assertThat(end.get("cocoon_generation_tokens_total", "model", "synthetic")).isEqualTo(line.getDouble("completion_tokens"));
        assertThat(end.get("cocoon_billed_nanoton_total", "model", "synthetic")).isEqualTo(line.getDouble("cost_nanoton"))
                .isEqualTo(usage.getDouble("total_cost"));
        assertThat(end.get("cocoon_prompt_tokens_total", "model", "synthetic")).isEqualTo(line.getDouble("prompt_tokens"));
    }

    /** The tokens its worker made between the client leaving and the cancel are billed, and counted once. */
    @Test
    void aStreamWhoseClientLeft_countsWhileItRuns_andEndsAtWhatItWasBilled() throws Exception {
        net = new TestNetwork();
        net.addWorker(200);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("some chunks arrived", () -> sse.size() >= 20);
        assertThat(scrape().get("cocoon_generation_tokens_total", "model", "synthetic")).as("while it runs").isPositive();

        response.request().connection().close();

        TestNetwork.eventually("the disconnect is reported", () -> scrape().value("cocoon_client_disconnects_total").orElse(0) == 1);
        JsonObject line = accessLine();
        assertThat(line.getBoolean("client_gone")).isTrue();
        assertThat(line.getLong("completion_tokens")).isGreaterThanOrEqualTo(20);
        Exposition end = scrape();
        assertThat(end.get("cocoon_generation_tokens_total", "model", "synthetic")).isEqualTo(line.getDouble("completion_tokens"));
        assertThat(end.get("cocoon_billed_nanoton_total", "model", "synthetic")).isEqualTo(line.getDouble("cost_nanoton"));
        TestNetwork.eventually("it is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isEqualTo(line.getLong("cost_nanoton"));
    }

    /** A stream its worker failed midway is billed what was made: the counters end there too. */
    @Test
    void aStreamThatFailedMidway_countsWhileItRuns_andEndsAtWhatItWasBilled() throws Exception {
        net = new TestNetwork();
        FailingEngine engine = new FailingEngine(new SyntheticEngine(100, 4, 4096));
        net.addWorker((vertx, credit) -> new Scheduler(engine, SchedulerOptions.DEFAULTS, credit), WorkerPaymentOptions.IN_MEMORY);
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, "")));
        TestNetwork.eventually("some chunks arrived", () -> sse.size() >= 20);
        assertThat(scrape().get("cocoon_generation_tokens_total", "model", "synthetic")).as("while it runs").isPositive();

        engine.failing.set(true);

        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        assertThat(events.get(events.size() - 2).data()).contains("\"error\"");
        TestNetwork.eventually("the failure is reported", () -> scrape().value("cocoon_request_attempts_total").orElse(0) == 1);
        JsonObject line = accessLine();
        assertThat(line.getString("error")).isEqualTo("upstream_error");
        assertThat(line.getLong("completion_tokens")).isGreaterThanOrEqualTo(20);
        Exposition end = scrape();
        assertThat(end.get("cocoon_request_errors_total", "code", "upstream_error")).isEqualTo(1);
        assertThat(end.get("cocoon_generation_tokens_total", "model", "synthetic")).isEqualTo(line.getDouble("completion_tokens"));
        assertThat(end.get("cocoon_billed_nanoton_total", "model", "synthetic")).isEqualTo(line.getDouble("cost_nanoton"));
    }

    /**
     * Audit V, V-2: the port closed at the end of the drain, and what the grace's streams did (their
     * tokens, cost, and the shutting_down errors of those cut at its end) reached no scrape. Now the
     * port answers the probes and scrapes through the grace, refuses every other request, and
     * lingers after the last stream is recorded until a scrape has read it.
     */
    @Test
    void aStoppingGateway_isScrapedThroughItsGrace_andItsLastScrapeHasWhatItsStreamsDid() throws Exception {
        net = TestNetwork.stopping(new ShutdownOptions(0, 3_000, 20_000));
        net.addWorker(new SyntheticEngine(20, 4, 4096, 100_000), SchedulerOptions.DEFAULTS, 60_000);
        SseEvents finishing = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":25")));  // about a second
        SseEvents cut = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":2000")));  // minutes: cut at the grace's end
        TestNetwork.eventually("both streams started", () -> finishing.size() >= 2 && cut.size() >= 2);

        CompletableFuture<Void> stopped;
        try (LogCapture log = new LogCapture(GatewayNode.class)) {
            stopped = net.stopGateway().toCompletionStage().toCompletableFuture();
            // The undeploy runs on the gateway's loops: /ready says 503 once the stop has begun there.
            TestNetwork.eventually("the stop has begun", () -> log.lines().stream().anyMatch(l -> l.contains("gateway stopping:")));
        }
        Thread.sleep(300);  // no drain: the grace has begun, in every front

        TestNetwork.Reply during = net.tryCall(HttpMethod.GET, "/metrics", 2_000);
        assertThat(during).as("/metrics answers through the grace").isNotNull();
        assertThat(during.status()).isEqualTo(200);
        assertThat(Exposition.parse(during.body()).get("cocoon_generation_tokens_total", "model", "synthetic")).isPositive();
        assertThat(net.tryCall(HttpMethod.GET, "/health", 2_000).status()).isEqualTo(200);
        assertThat(net.tryCall(HttpMethod.GET, "/ready", 2_000).status()).isEqualTo(503);
        // Anything else is refused, as a closed port refused it: no new work in the grace.
        TestNetwork.Reply refused = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, ""));
        assertThat(refused.status()).isEqualTo(503);
        assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("shutting_down");
        assertThat(refused.response().getHeader("Retry-After")).isEqualTo("1");
        assertThat(net.call(HttpMethod.GET, "/v1/models", API_KEY, null).status()).isEqualTo(503);
        // A gRPC call's stream is refused as unprocessed (REFUSED_STREAM): UNAVAILABLE, which clients send elsewhere.
        InferenceGrpc.Call grpcCall = new InferenceGrpc(net).generate(API_KEY, InferenceGrpc.chat("synthetic").build());
        assertThat(grpcCall.ended).failsWithin(5, TimeUnit.SECONDS);
        assertThat(rootCause(grpcCall.ended)).isInstanceOfSatisfying(GrpcErrorException.class,
                e -> assertThat(e.status()).isEqualTo(GrpcStatus.UNAVAILABLE));

        assertThat(finishing.ended.get(10, TimeUnit.SECONDS)).noneMatch(e -> e.data().contains("\"error\""));
        assertThat(cut.ended.get(10, TimeUnit.SECONDS)).anyMatch(e -> e.data().contains("shutting_down"));
        assertThat(stopped).as("lingering for a scrape").isNotDone();
        TestNetwork.eventually("both streams are recorded", () -> relayed().size() == 2);
        Exposition last = scrape();
        List<JsonObject> relayed = relayed();
        assertThat(relayed).extracting(l -> l.getString("error")).containsExactlyInAnyOrder(null, "shutting_down");
        assertThat(last.get("cocoon_generation_tokens_total", "model", "synthetic"))
                .isEqualTo(relayed.stream().mapToLong(l -> l.getLong("completion_tokens")).sum());
        assertThat(last.get("cocoon_billed_nanoton_total", "model", "synthetic"))
                .isEqualTo(relayed.stream().mapToLong(l -> l.getLong("cost_nanoton")).sum()).isPositive();
        // The cut stream's, and the three requests refused in the grace.
        assertThat(last.get("cocoon_request_errors_total", "code", "shutting_down")).isEqualTo(4);
        assertThat(last.get("cocoon_grpc_refusals_total", "code", "shutting_down")).isEqualTo(1);
        assertThat(last.get("cocoon_requests_total", "model", "synthetic", "status", "200", "tier", "default")).isEqualTo(2);
        assertThat(last.get("cocoon_http_responses_total", "route", "v1", "status", "503")).isEqualTo(2);

        // That scrape read the final counts: the linger ends, and the port closes.
        stopped.get(10, TimeUnit.SECONDS);
        assertThat(net.tryCall(HttpMethod.GET, "/metrics", 1_000)).as("the port is closed").isNull();
    }

    /** Without a linger the port closes once the last stream is recorded, not at the grace's end. */
    @Test
    void withoutALinger_thePortClosesOnceTheLastStreamIsRecorded() throws Exception {
        net = TestNetwork.stopping(new ShutdownOptions(0, 10_000));
        net.addWorker(20);
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":20")));  // about a second
        TestNetwork.eventually("the stream started", () -> sse.size() >= 2);

        long stopAsked = System.nanoTime();
        CompletableFuture<Void> stopped = net.stopGateway().toCompletionStage().toCompletableFuture();
        Thread.sleep(200);
        assertThat(net.tryCall(HttpMethod.GET, "/metrics", 2_000)).as("/metrics answers through the grace").isNotNull();

        assertThat(sse.ended.get(10, TimeUnit.SECONDS)).noneMatch(e -> e.data().contains("\"error\""));
        TestNetwork.eventually("the stream is recorded", () -> relayed().size() == 1);
        TestNetwork.eventually("the port closes", () -> net.tryCall(HttpMethod.GET, "/metrics", 500) == null);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopAsked)).as("well before the grace's 10 s")
                .isLessThan(6_000);
        stopped.get(15, TimeUnit.SECONDS);
    }

    private Exposition scrape() {
        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/metrics", null, null);
        assertThat(reply.status()).isEqualTo(200);
        return Exposition.parse(reply.body());
    }

    /** The access log's lines of relayed requests (those with a token count). */
    private List<JsonObject> relayed() {
        synchronized (lines) {
            return lines.list.stream().map(e -> new JsonObject(e.getFormattedMessage()))
                    .filter(l -> l.containsKey("completion_tokens")).toList();
        }
    }

    /** The one relayed request's access-log line, once it is written. */
    private JsonObject accessLine() {
        TestNetwork.eventually("the request's access-log line", () -> relayed().size() == 1);
        return relayed().getFirst();
    }

    private static Throwable rootCause(CompletableFuture<?> failed) {
        try {
            failed.join();
            throw new AssertionError("not failed");
        } catch (java.util.concurrent.CompletionException e) {
            Throwable cause = e;
            while (cause.getCause() != null && !(cause instanceof GrpcErrorException)) {
                cause = cause.getCause();
            }
            return cause;
        }
    }

    /** The synthetic engine, whose step throws once {@link #failing} is set. */
    private static final class FailingEngine extends DelegatingEngine {
        final AtomicBoolean failing = new AtomicBoolean();

        FailingEngine(Engine engine) {
            super(engine);
        }

        @Override
        public void step(List<Slot> slots, int[] next) {
            if (failing.get()) {
                throw new IllegalStateException("injected kernel error");
            }
            engine.step(slots, next);
        }
    }
}
