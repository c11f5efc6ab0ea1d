package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The flow knobs load testers asked for (abort after a time, request headers, prompt sets) and the
 * driver's time series, through a real gateway and a synthetic-engine worker on loopback.
 */
class ScenarioKnobsOnLoopbackTest {
    /** Each stream is 40 tokens at 50 tokens/s, 0.8 s: long enough to be cut on time, short enough to finish in a test. */
    private static final int REPLY_TOKENS = 40;

    private static LoopbackNetwork net;
    private static RecordingFront front;

    @BeforeAll
    static void start() {
        net = new LoopbackNetwork(1, 50, 128, REPLY_TOKENS);
        front = new RecordingFront(net);
    }

    @AfterAll
    static void stop() {
        net.close();
    }

    /**
     * Each flow's streams are cut by whichever of its two bounds comes first, and counted as aborted,
     * not as errors; the worker sees every cut stream end.
     */
    @Test
    void aStreamIsCutByWhicheverAbortComesFirst_countedAsAborted() throws Exception {
        Summary s = run("""
                {"name": "t", "max_requests": 100, "flows": {
                  "on_time": {"request": %1$s, "abort_after": "300ms", %2$s},
                  "tokens_first": {"request": %1$s, "abort_after_tokens": 2, "abort_after": "5s", %2$s},
                  "time_first": {"request": %1$s, "abort_after_tokens": 30, "abort_after": "200ms", %2$s}}}"""
                .formatted("{\"stream\": true, \"max_tokens\": 64, \"prompt\": \"tell me a long story\"}",
                        "\"start_rate\": 5, \"stages\": [{\"duration\": \"1s\", \"target\": 5}], \"max_vus\": 10"), net.viaGateway(), null);

        for (String flow : List.of("on_time", "tokens_first", "time_first")) {
            Recorder.Snapshot f = s.flows().get(flow);
            assertThat(f.count(Metric.REQUESTS)).as(flow).isPositive();
            assertThat(f.count(Metric.ABORTED)).as("%s:%n%s", flow, s.text()).isEqualTo(f.count(Metric.REQUESTS));
            assertThat(f.count(Metric.ERRORS) + f.count(Metric.COMPLETED)).as(flow).isZero();
        }
        Recorder.Snapshot tokensFirst = s.flows().get("tokens_first");
        assertThat(tokensFirst.count(Metric.TOKENS)).as("cut at its second token").isEqualTo(2 * tokensFirst.count(Metric.ABORTED));
        // 200 ms at 50 tokens/s is about 10 tokens: far from the 30 that would have cut it otherwise.
        Recorder.Snapshot timeFirst = s.flows().get("time_first");
        assertThat(timeFirst.count(Metric.TOKENS)).isLessThan(20 * timeFirst.count(Metric.ABORTED));
        assertThat(s.flows().get("on_time").count(Metric.TOKENS)).isLessThan((long) REPLY_TOKENS * s.flows().get("on_time").count(Metric.ABORTED));
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (net.inFlight() > 0 && System.nanoTime() < until) {
            Thread.sleep(50);
        }
        assertThat(net.inFlight()).as("streams left in flight on the worker").isZero();
    }

    @Test
    void aFlowsHeadersArriveWithEveryRequest_besideTheDriversOwn() throws Exception {
        front.clear();
        Summary s = run(oneFlow("{\"stream\": true, \"max_tokens\": 8, \"prompt\": \"hi\", \"headers\": {\"X-Client\": \"bench\", "
                + "\"x-run-id\": \"r-17\"}}"), front.target(), null);

        assertThat(s.snapshot().count(Metric.COMPLETED)).as(s.text()).isEqualTo(s.snapshot().count(Metric.REQUESTS)).isPositive();
        assertThat(front.headers).hasSize((int) s.snapshot().count(Metric.REQUESTS)).allSatisfy(h -> {
            assertThat(h.get("x-client")).isEqualTo("bench");
            assertThat(h.get("X-Run-Id")).isEqualTo("r-17");
            assertThat(h.get("Authorization")).isEqualTo("Bearer " + LoopbackNetwork.API_KEY);
            assertThat(h.get("Content-Type")).isEqualTo("application/json");
        });
    }

    /** The flow's Nth request asks prompt N mod 3, streamed or not; the gateway answers each. */
    @Test
    void aFlowsPromptsAreTakenInTurn() throws Exception {
        for (boolean stream : new boolean[] {true, false}) {
            front.clear();
            Summary s = run(oneFlow("{\"stream\": %s, \"max_tokens\": 8, \"prompts\": [\"p0\", \"p1\", \"p2\"]}".formatted(stream)),
                    front.target(), null);

            long n = s.snapshot().count(Metric.REQUESTS);
            assertThat(s.snapshot().count(Metric.COMPLETED)).as(s.text()).isEqualTo(n).isGreaterThan(3);
            Map<String, Long> asked = front.bodies.stream()
                    .collect(Collectors.groupingBy(b -> b.getJsonArray("messages").getJsonObject(0).getString("content"), Collectors.counting()));
            Map<String, Long> inTurn = LongStream.range(0, n).mapToObj(i -> "p" + i % 3)
                    .collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
            assertThat(asked).as("stream: %s", stream).isEqualTo(inTurn);
        }
    }

    /** Every interval is there, empty or not, and each column sums to the run's total. */
    @Test
    void theTimeSeriesCoversTheRunInIntervals_summingToItsTotals() throws Exception {
        Summary s = run(oneFlow("{\"stream\": true, \"max_tokens\": 8, \"prompt\": \"hi\"}"), net.viaGateway(), Duration.ofMillis(300));
        List<TimeSeries.Interval> series = s.series().intervals();

        assertThat(s.series().interval()).isEqualTo(Duration.ofMillis(300));
        assertThat(series).hasSize((int) Math.ceil(s.snapshot().seconds() / 0.3));
        for (int i = 0; i < series.size(); i++) {
            assertThat(series.get(i).startSeconds()).isCloseTo(i * 0.3, within(1e-9));
        }
        assertThat(series.getLast().endSeconds()).isEqualTo(s.snapshot().seconds());
        Map<Metric, Function<TimeSeries.Interval, Long>> columns = Map.of(Metric.REQUESTS, TimeSeries.Interval::requests,
                Metric.COMPLETED, TimeSeries.Interval::completed, Metric.ABORTED, TimeSeries.Interval::aborted,
                Metric.REJECTED, TimeSeries.Interval::rejected, Metric.ERRORS, TimeSeries.Interval::errors,
                Metric.TOKENS, TimeSeries.Interval::tokens);
        columns.forEach((metric, column) -> assertThat(series.stream().mapToLong(column::apply).sum()).as(metric.k6Name)
                .isEqualTo(s.snapshot().count(metric)));
        assertThat(s.snapshot().count(Metric.COMPLETED)).isGreaterThan(5);
        assertThat(series).filteredOn(i -> i.requests() > 0).isNotEmpty()
                .allSatisfy(i -> assertThat(i.ttftP99()).isGreaterThanOrEqualTo(i.ttftP50()).isPositive());

        JsonObject json = s.json().getJsonObject("series");
        assertThat(json.getDouble("interval_s")).isEqualTo(0.3);
        assertThat(json.getJsonArray("intervals")).hasSize(series.size());
        assertThat(json.getJsonArray("intervals").getJsonObject(0).getJsonObject("ttft").fieldNames()).containsExactly("p(50)", "p(99)");
        assertThat(s.text()).contains("every 300ms").contains("tokens/s");
    }

    /** 2 s of 10 requests a second. */
    private static String oneFlow(String request) {
        return """
                {"name": "t", "max_requests": 100, "flows": {"only": {"request": %s,
                  "start_rate": 10, "stages": [{"duration": "2s", "target": 10}], "max_vus": 20}}}""".formatted(request);
    }

    private static Summary run(String scenario, Target target, Duration seriesEvery) throws Exception {
        LoadDriver driver = new LoadDriver(net.vertx(), Scenario.parse(new JsonObject(scenario), Scenario.Overrides.NONE, "test"), target,
                Clock.systemUTC());
        if (seriesEvery != null) {
            driver.seriesEvery(seriesEvery);
        }
        return driver.run().await(60, TimeUnit.SECONDS);
    }

    /**
     * A hop in front of the gateway that keeps each request's headers and body and passes it on
     * unchanged, its answer back likewise: the gateway reads no header a test could see echoed.
     */
    private static final class RecordingFront {
        final List<MultiMap> headers = new CopyOnWriteArrayList<>();
        final List<JsonObject> bodies = new CopyOnWriteArrayList<>();
        private final HttpServer server;

        RecordingFront(LoopbackNetwork net) {
            URI gateway = net.viaGateway().baseUrl();
            HttpClient client = net.vertx().createHttpClient();
            server = net.vertx().createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
                headers.add(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()));
                bodies.add(body.toJsonObject());
                RequestOptions up = new RequestOptions().setMethod(req.method()).setHost(gateway.getHost()).setPort(gateway.getPort())
                        .setURI(req.uri()).setHeaders(MultiMap.caseInsensitiveMultiMap().addAll(req.headers()).remove("Host"));
                client.request(up).compose(r -> r.send(body)).onComplete(answer -> {
                    if (answer.failed()) {
                        req.response().setStatusCode(502).end();
                        return;
                    }
                    // Sent on chunked, whatever the framing upstream: only the body's own headers are passed on.
                    req.response().setStatusCode(answer.result().statusCode()).headers()
                            .addAll(answer.result().headers()).remove("Content-Length").remove("Transfer-Encoding").remove("Connection");
                    answer.result().pipeTo(req.response().setChunked(true));
                });
            })).listen(0, "127.0.0.1").await();
        }

        Target target() {
            return new Target(URI.create("http://127.0.0.1:" + server.actualPort()), LoopbackNetwork.API_KEY, net.viaGateway().model());
        }

        void clear() {
            headers.clear();
            bodies.clear();
        }
    }
}
