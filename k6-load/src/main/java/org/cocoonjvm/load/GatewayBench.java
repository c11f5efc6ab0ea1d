package org.cocoonjvm.load;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The gateway's overhead, side by side in one run: the same closed-loop streaming load (N users,
 * each sending its next request when the last one ends) straight to a worker's own OpenAI
 * endpoint and through the gateway, alternating direct and gateway phases at each concurrency
 * so machine noise hits both. The worker runs the synthetic engine, so what differs between the
 * two paths is the gateway alone. Client, gateway and worker share one process and its cores, each
 * with a Vert.x instance (event loops) of its own, as if they were three processes.
 *
 * <p>Both paths are warmed up first, long enough for the JIT to compile the per-request code: at
 * one stream a request every ~100 ms runs it too rarely to ever get hot, and the first version of
 * this benchmark (a 1 s warm-up) measured the interpreter.
 */
public final class GatewayBench {

    /**
     * @param concurrencies    streams open at once, one measurement each
     * @param phase            length of each direct or gateway phase
     * @param rounds           direct-then-gateway pairs per concurrency
     * @param tokensPerSecond  engine steps per second (1000: 1 ms steps)
     * @param replyTokens      tokens per reply
     * @param idleStreams      if positive, also the heap held by this many streams waiting for their first token
     * @param warmup           unmeasured load on each path before the first phase
     */
    public record Options(List<Integer> concurrencies, Duration phase, int rounds, double tokensPerSecond, int replyTokens,
                          int idleStreams, Duration warmup) {
        public Options {
            if (concurrencies.isEmpty() || concurrencies.stream().anyMatch(c -> c < 1 || c > 4096)) {
                throw new ScenarioException("--concurrency needs values between 1 and 4096, got " + concurrencies);
            }
            if (phase.toMillis() < 100 || rounds < 1 || !(tokensPerSecond > 0) || replyTokens < 1 || idleStreams < 0
                    || warmup.isNegative()) {
                throw new ScenarioException("phase must be at least 100ms; rounds, tokens per second and reply tokens positive; "
                        + "idle streams and warm-up not negative");
            }
            concurrencies = List.copyOf(concurrencies);
        }
    }

    /** One concurrency's measurements, both paths. */
    public record Row(int concurrency, Recorder.TrendStats directTtft, Recorder.TrendStats gatewayTtft,
                      double directTokensPerS, double gatewayTokensPerS, double directCpuUsPerToken, double gatewayCpuUsPerToken,
                      long errors) {
        double addedP50() {
            return gatewayTtft.percentile(50) - directTtft.percentile(50);
        }

        double addedP99() {
            return gatewayTtft.percentile(99) - directTtft.percentile(99);
        }
    }

    public record Report(Options options, List<Row> rows, JsonObject idle) {
        public String table() {
            StringBuilder t = new StringBuilder(String.format(Locale.ROOT,
                    "gateway overhead: synthetic engine %.0f tok/s per stream, %d-token replies, %s phases x %d rounds, %d cores%n",
                    options.tokensPerSecond(), options.replyTokens(), K6Duration.format(options.phase()), options.rounds(),
                    Runtime.getRuntime().availableProcessors()));
            t.append(String.format(Locale.ROOT, "%5s | %9s %9s %8s | %9s %9s %8s | %10s %10s %6s | %8s %8s | %6s%n",
                    "conc", "p50 dir", "p50 gw", "added", "p99 dir", "p99 gw", "added", "tok/s dir", "tok/s gw", "ratio",
                    "µs/t dir", "µs/t gw", "errors"));
            for (Row r : rows) {
                t.append(String.format(Locale.ROOT, "%5d | %7.2fms %7.2fms %6.2fms | %7.2fms %7.2fms %6.2fms | %10.0f %10.0f %5.2fx | %8.2f %8.2f | %6d%n",
                        r.concurrency(), r.directTtft().percentile(50), r.gatewayTtft().percentile(50), r.addedP50(),
                        r.directTtft().percentile(99), r.gatewayTtft().percentile(99), r.addedP99(),
                        r.directTokensPerS(), r.gatewayTokensPerS(), r.gatewayTokensPerS() / r.directTokensPerS(),
                        r.directCpuUsPerToken(), r.gatewayCpuUsPerToken(), r.errors()));
            }
            if (idle != null) {
                t.append(String.format(Locale.ROOT, "idle streams: %d held %.1f MiB of heap (%.1f KiB each, whole process)%n",
                        idle.getInteger("streams"), idle.getDouble("heap_mib_whole_process"), idle.getDouble("heap_kib_per_stream_whole_process")));
            }
            return t.toString();
        }

        public JsonObject json() {
            JsonArray out = new JsonArray();
            for (Row r : rows) {
                out.add(new JsonObject().put("concurrency", r.concurrency())
                        .put("requests_direct", r.directTtft().count()).put("requests_gateway", r.gatewayTtft().count())
                        .put("ttft_p50_direct_ms", r.directTtft().percentile(50)).put("ttft_p50_gateway_ms", r.gatewayTtft().percentile(50))
                        .put("ttft_p99_direct_ms", r.directTtft().percentile(99)).put("ttft_p99_gateway_ms", r.gatewayTtft().percentile(99))
                        .put("added_p50_ms", r.addedP50()).put("added_p99_ms", r.addedP99())
                        .put("tokens_per_s_direct", r.directTokensPerS()).put("tokens_per_s_gateway", r.gatewayTokensPerS())
                        .put("cpu_us_per_token_direct", r.directCpuUsPerToken()).put("cpu_us_per_token_gateway", r.gatewayCpuUsPerToken())
                        .put("errors", r.errors()));
            }
            return new JsonObject().put("cores", Runtime.getRuntime().availableProcessors())
                    .put("tokens_per_s_per_stream", options.tokensPerSecond()).put("reply_tokens", options.replyTokens())
                    .put("phase_ms", options.phase().toMillis()).put("rounds", options.rounds()).put("rows", out).put("idle_streams", idle);
        }

        /** TTFT CDFs for both paths at every concurrency, and tokens/s against concurrency. */
        public List<Path> writePlots(Path dir) throws IOException {
            Files.createDirectories(dir);
            SvgChart cdf = new SvgChart("Time to first token, CDF (dashed: direct to worker; solid: via gateway)",
                    "time to first token (ms)", "fraction of requests");
            double clip = 0;
            for (int i = 0; i < rows.size(); i++) {
                Row r = rows.get(i);
                cdf.add(cdfSeries("direct, " + r.concurrency() + " streams", i, true, r.directTtft()));
                cdf.add(cdfSeries("gateway, " + r.concurrency() + " streams", i, false, r.gatewayTtft()));
                clip = Math.max(clip, Math.max(r.directTtft().percentile(99), r.gatewayTtft().percentile(99)));
            }
            cdf.clipX(clip);
            double[] xs = rows.stream().mapToDouble(Row::concurrency).toArray();
            SvgChart throughput = new SvgChart("Tokens per second against concurrency", "concurrent streams", "tokens per second")
                    .add(new SvgChart.Series("direct to worker", 0, true, true, xs, rows.stream().mapToDouble(Row::directTokensPerS).toArray()))
                    .add(new SvgChart.Series("via gateway", 1, false, true, xs, rows.stream().mapToDouble(Row::gatewayTokensPerS).toArray()));
            Path cdfFile = dir.resolve("ttft-cdf.svg");
            Path throughputFile = dir.resolve("throughput.svg");
            Path jsonFile = dir.resolve("report.json");
            Files.writeString(cdfFile, cdf.render());
            Files.writeString(throughputFile, throughput.render());
            Files.writeString(jsonFile, json().encodePrettily());
            return List.of(cdfFile, throughputFile, jsonFile);
        }

        private static SvgChart.Series cdfSeries(String name, int colour, boolean dashed, Recorder.TrendStats ttft) {
            long[] sorted = ttft.sortedNanos();
            // At most ~200 points: enough for a smooth curve, small enough to read the file.
            int step = Math.max(1, sorted.length / 200);
            List<double[]> points = new ArrayList<>();
            for (int i = 0; i < sorted.length; i += step) {
                points.add(new double[] {sorted[i] / 1e6, (i + 1.0) / sorted.length});
            }
            if (sorted.length > 0) {
                points.add(new double[] {sorted[sorted.length - 1] / 1e6, 1.0});
            }
            return new SvgChart.Series(name, colour, dashed, false, points.stream().mapToDouble(p -> p[0]).toArray(),
                    points.stream().mapToDouble(p -> p[1]).toArray());
        }
    }

    private GatewayBench() {}

    public static Report run(Options options) {
        List<Row> rows = new ArrayList<>();
        JsonObject idle = null;
        try (LoopbackNetwork net = new LoopbackNetwork(1, options.tokensPerSecond(), 512, options.replyTokens())) {
            Target direct = net.direct(0);
            Target gateway = net.viaGateway();
            int most = options.concurrencies().stream().max(Integer::compare).orElseThrow();
            HttpClient client = net.vertx().createHttpClient(new HttpClientOptions().setKeepAlive(true),
                    new PoolOptions().setHttp1MaxSize(most * 2));
            // Warm-up, both paths: the JIT and connection pools, not measured.
            Scenario.RequestSpec request = request(options.replyTokens());
            phase(net.vertx(), client, direct, request, most, options.warmup());
            phase(net.vertx(), client, gateway, request, most, options.warmup());
            for (int c : options.concurrencies()) {
                Recorder d = new Recorder();
                Recorder g = new Recorder();
                double[] dTime = new double[2];
                double[] gTime = new double[2];
                for (int round = 0; round < options.rounds(); round++) {
                    accumulate(phase(net.vertx(), client, direct, request, c, options.phase()), d, dTime);
                    accumulate(phase(net.vertx(), client, gateway, request, c, options.phase()), g, gTime);
                }
                Recorder.Snapshot ds = d.snapshot(dTime[0]);
                Recorder.Snapshot gs = g.snapshot(gTime[0]);
                rows.add(new Row(c, ds.trend(Metric.TTFT), gs.trend(Metric.TTFT),
                        ds.count(Metric.TOKENS) / dTime[0], gs.count(Metric.TOKENS) / gTime[0],
                        dTime[1] / Math.max(1, ds.count(Metric.TOKENS)) * 1e6, gTime[1] / Math.max(1, gs.count(Metric.TOKENS)) * 1e6,
                        ds.count(Metric.ERRORS) + gs.count(Metric.ERRORS)));
            }
            client.close().await();
        }
        if (options.idleStreams() > 0) {
            idle = idleStreams(options.idleStreams());
        }
        return new Report(options, rows, idle);
    }

    record PhaseResult(List<Outcome> outcomes, double seconds, double cpuSeconds) {}

    static void accumulate(PhaseResult p, Recorder into, double[] secondsAndCpu) {
        p.outcomes().forEach(o -> o.record(into));
        secondsAndCpu[0] += p.seconds();
        secondsAndCpu[1] += p.cpuSeconds();
    }

    /** Closed loop: {@code users} streams, each sending the next request when the last ends, until the phase is over. */
    static PhaseResult phase(Vertx vertx, HttpClient client, Target target, Scenario.RequestSpec request, int users,
                                     Duration length) {
        List<Outcome> outcomes = new ArrayList<>();
        long cpu0 = processCpuNanos();
        long t0 = System.nanoTime();
        long deadline = t0 + length.toNanos();
        List<Future<Void>> all = new ArrayList<>();
        for (int u = 0; u < users; u++) {
            Promise<Void> done = Promise.promise();
            vertx.runOnContext(v -> loop(client, target, request, deadline, outcomes, done));
            all.add(done.future());
        }
        try {
            Future.all(all).await(length.toMillis() + 60_000, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("a " + users + "-stream phase against " + target.baseUrl() + " did not end within a minute of its time");
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        synchronized (outcomes) {
            return new PhaseResult(List.copyOf(outcomes), seconds, (processCpuNanos() - cpu0) / 1e9);
        }
    }

    /** Every reply runs to exactly {@code replyTokens}: the engine's length and the request's max_tokens agree. */
    static Scenario.RequestSpec request(int replyTokens) {
        return new Scenario.RequestSpec(true, replyTokens, "default", "translate: hello world");
    }

    private static void loop(HttpClient client, Target target, Scenario.RequestSpec request, long deadline, List<Outcome> outcomes,
                             Promise<Void> done) {
        if (System.nanoTime() > deadline) {
            done.complete();
            return;
        }
        new LoadCall(client, target, request, 0).start().onSuccess(outcome -> {
            synchronized (outcomes) {
                outcomes.add(outcome);
            }
            loop(client, target, request, deadline, outcomes, done);
        });
    }

    /** Streams whose first token never comes in time (0.001 tokens/s): the heap they hold, gateway, worker and client together. */
    private static JsonObject idleStreams(int count) {
        try (LoopbackNetwork net = new LoopbackNetwork(1, 0.001, count + 16, 0)) {
            HttpClient client = net.vertx().createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                    .setHttp2ClearTextUpgrade(false), new PoolOptions().setHttp2MaxSize(8));
            long before = usedHeapAfterGc();
            List<LoadCall> calls = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                LoadCall call = new LoadCall(client, net.viaGateway(), request(16), 0);
                calls.add(call);
                net.vertx().runOnContext(v -> call.start());
            }
            // Every stream is open once the gateway counts it in flight on the worker.
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (net.inFlight() < count && System.nanoTime() < until) {
                sleep(100);
            }
            long held = usedHeapAfterGc() - before;
            net.vertx().runOnContext(v -> calls.forEach(LoadCall::interrupt));
            return new JsonObject().put("streams", count).put("heap_mib_whole_process", held / 1048576.0)
                    .put("heap_kib_per_stream_whole_process", held / 1024.0 / count)
                    .put("note", "gateway, worker and client share the process: an upper bound for the gateway");
        }
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static long usedHeapAfterGc() {
        for (int i = 0; i < 3; i++) {
            System.gc();
            sleep(200);
        }
        Runtime rt = Runtime.getRuntime();
        return rt.totalMemory() - rt.freeMemory();
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
