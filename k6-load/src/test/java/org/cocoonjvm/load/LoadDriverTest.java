package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Clock;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The driver against servers that misbehave in ways a gateway can: a small Vert.x server on
 * loopback whose first path segment picks the behaviour.
 */
class LoadDriverTest {
    private static final String TOKEN = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";

    private static Vertx vertx;
    private static HttpServer server;
    private static final AtomicLong arrivals = new AtomicLong();

    @BeforeAll
    static void start() {
        vertx = Vertx.vertx();
        server = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
            HttpServerResponse res = req.response().setChunked(true).putHeader("Content-Type", "text/event-stream");
            switch (req.path().split("/")[1]) {
                // The head and one token, then silence.
                case "stall" -> res.write(TOKEN);
                // A rate limit refusing every other request; the rest are answered in full.
                case "halfbusy" -> {
                    if (arrivals.incrementAndGet() % 2 == 0) {
                        res.setStatusCode(429).end("{\"error\":{\"code\":\"rate_limit_exceeded\"}}");
                    } else {
                        answer(res, body.toJsonObject().getBoolean("stream"));
                    }
                }
                case "ok" -> answer(res, body.toJsonObject().getBoolean("stream"));
                // Alive on the wire, never a token: only keep-alive comments.
                case "pings" -> {
                    res.write(": keep-alive\n\n");
                    long timer = vertx.setPeriodic(50, id -> res.write(": keep-alive\n\n"));
                    res.closeHandler(v -> vertx.cancelTimer(timer));
                }
                case "badjson" -> res.putHeader("Content-Type", "application/json").end("{\"usage\":");
                default -> res.setStatusCode(404).end();
            }
        })).listen(0, "127.0.0.1").await();
    }

    private static void answer(HttpServerResponse res, boolean stream) {
        if (stream) {
            res.end(TOKEN.repeat(3) + "data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\ndata: [DONE]\n\n");
        } else {
            res.putHeader("Content-Type", "application/json").end("{\"usage\":{\"completion_tokens\":3}}");
        }
    }

    @AfterAll
    static void stop() {
        vertx.close().await();
    }

    @Test
    void aStreamThatGoesSilentAfterItsHead_isATimeoutError_notInterrupted() throws Exception {
        Summary s = runOne("stall", true);
        assertThat(s.snapshot().errorsByKind()).isEqualTo(Map.of("timeout", 1L));
        assertThat(s.snapshot().count(Metric.INTERRUPTED)).isZero();
        assertThat(s.snapshot().seconds()).as("ended by the timeout, not by graceful_stop").isLessThan(5);
    }

    @Test
    void aStreamOfKeepAlivesOnly_isATimeoutError() throws Exception {
        Summary s = runOne("pings", true);
        assertThat(s.snapshot().errorsByKind()).isEqualTo(Map.of("timeout", 1L));
        assertThat(s.snapshot().count(Metric.INTERRUPTED)).isZero();
        assertThat(s.snapshot().trend(Metric.TTFT).count()).as("comments are not a first token").isZero();
    }

    /** As in lib/cocoon.js: a body that does not parse is bad_json and no first token. */
    @Test
    void aNonStreamedAnswerThatIsNotJson_isBadJson_withoutATtftSample() throws Exception {
        Summary s = runOne("badjson", false);
        assertThat(s.snapshot().errorsByKind()).isEqualTo(Map.of("bad_json", 1L));
        assertThat(s.snapshot().trend(Metric.TTFT).count()).isZero();
    }

    /** Only translation-bursts expects 429s; in the others a rate limit is a failed run, in both profiles. */
    @ParameterizedTest
    @CsvSource({"chat-streaming,", "chat-streaming,ci", "disconnect-storm,ci", "soak,", "soak,ci"})
    void rejectionsFailTheScenariosThatDoNotExpectThem(String name, String profile) throws Exception {
        Scenario scenario = Scenario.load(Path.of("scenarios", name + ".json"), new Scenario.Overrides(profile, null, Duration.ofSeconds(1)));
        Target target = new Target(URI.create("http://127.0.0.1:" + server.actualPort() + "/halfbusy"), "k", "m");
        Summary s = new LoadDriver(vertx, scenario, target, Clock.systemUTC()).run().await(30, TimeUnit.SECONDS);

        assertThat(s.snapshot().count(Metric.REJECTED)).isPositive();
        assertThat(s.thresholds()).filteredOn(r -> !r.ok()).extracting(r -> r.threshold().key()).as(s.text())
                .containsExactly("rejected");
    }

    @Test
    void aRunCutShortByMaxRequests_saysSo() throws Exception {
        Scenario scenario = Scenario.parse(new JsonObject("""
                {"name": "t", "max_requests": 3, "flows": {"only": {"request": {"stream": true, "max_tokens": 8, "prompt": "hi"},
                  "start_rate": 10, "stages": [{"duration": "3s", "target": 10}], "max_vus": 5}}}"""), Scenario.Overrides.NONE, "test");
        Target target = new Target(URI.create("http://127.0.0.1:" + server.actualPort() + "/ok"), "k", "m");
        Summary s = new LoadDriver(vertx, scenario, target, Clock.systemUTC()).run().await(30, TimeUnit.SECONDS);

        assertThat(s.snapshot().count(Metric.REQUESTS)).isEqualTo(3);
        assertThat(s.ended()).isEqualTo(Summary.Ending.MAX_REQUESTS);
        assertThat(s.json().getString("ended")).isEqualTo("max_requests");
        assertThat(s.text()).contains("CUT SHORT by max_requests");
        assertThat(runOne("stall", true).ended()).isEqualTo(Summary.Ending.STAGES);
    }

    /**
     * The driver cuts on time whether or not anything arrives, where k6 can only check when an event
     * comes (README): a stream of keep-alives alone is still aborted, and not a timeout error.
     */
    @Test
    void anAbortOnTime_cutsAStreamThatSendsNothingButKeepAlives() throws Exception {
        Summary s = runOne("pings", true, "\"abort_after\": \"200ms\",");
        assertThat(s.snapshot().count(Metric.ABORTED)).as(s.text()).isEqualTo(1);
        assertThat(s.snapshot().count(Metric.ERRORS)).isZero();
        assertThat(s.snapshot().count(Metric.TOKENS)).isZero();
    }

    private static Summary runOne(String behaviour, boolean stream) throws Exception {
        return runOne(behaviour, stream, "");
    }

    /** One request (5/s for 200 ms) with a 500 ms timeout and a graceful_stop far longer; {@code flowFields} end with a comma. */
    private static Summary runOne(String behaviour, boolean stream, String flowFields) throws Exception {
        Scenario scenario = Scenario.parse(new JsonObject("""
                {"name": "t", "max_requests": 1, "graceful_stop": "20s", "flows": {"only": {
                  "request": {"stream": %s, "max_tokens": 8, "prompt": "hi"}, "timeout": "500ms", %s
                  "start_rate": 5, "stages": [{"duration": "200ms", "target": 5}], "max_vus": 1}}}""".formatted(stream, flowFields)),
                Scenario.Overrides.NONE, "test");
        Target target = new Target(URI.create("http://127.0.0.1:" + server.actualPort() + "/" + behaviour), "k", "m");
        return new LoadDriver(vertx, scenario, target, Clock.systemUTC()).run().await(30, TimeUnit.SECONDS);
    }
}
