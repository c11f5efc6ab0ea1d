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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.protocol.transport.NetTransport;

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
     * @param replies          how long the replies are
     * @param idleStreams      if positive, also the heap held by this many streams waiting for their first token
     * @param warmup           most unmeasured load on the paths before the first phase
     * @param transport        the client's and the worker's socket layer
     * @param gatewayTransport the gateway's (and the control's)
     * @param control          also measure a third path through a {@link SpliceProxy} in the gateway's place
     */
    public record Options(List<Integer> concurrencies, Duration phase, int rounds, double tokensPerSecond, Replies replies,
                          int idleStreams, Duration warmup, NetTransport transport, NetTransport gatewayTransport,
                          boolean control) {
        /** Each refusal names the {@code cocoon bench gateway} option to fix, and its value. */
        public Options {
            if (concurrencies.isEmpty() || concurrencies.stream().anyMatch(c -> c < 1 || c > 4096)) {
                throw new ScenarioException("--concurrency must be one or more values between 1 and 4096, got " + concurrencies);
            }
            ScenarioException.longEnough("--phase", phase);
            ScenarioException.atLeast("--rounds", rounds, 1);
            ScenarioException.positive("--synthetic-rate", tokensPerSecond);
            ScenarioException.atLeast("--idle-streams", idleStreams, 0);
            if (warmup.isNegative()) {
                throw new ScenarioException("--warmup must not be negative, got " + K6Duration.format(warmup));
            }
            concurrencies = List.copyOf(concurrencies);
            Objects.requireNonNull(transport, "transport");
            Objects.requireNonNull(gatewayTransport, "gatewayTransport");
        }
    }

    /**
     * Reply lengths: every reply {@code mean} tokens, or, with a spread, uniform within
     * {@code mean × (1 ± spread)}. Equal replies keep a closed loop in lockstep: every stream ends
     * in the same engine step and sends its next request at once, so each phase is a train of
     * bursts of N requests. Spread lengths let the streams drift apart, as real conversations do.
     */
    public record Replies(int mean, double spread) {
        public Replies {
            ScenarioException.atLeast("--reply-tokens", mean, 1);
            if (!(spread >= 0 && spread < 1)) {
                throw new ScenarioException("--reply-spread must be at least 0 and below 1, got " + spread);
            }
        }

        int fewest() {
            return Math.max(1, (int) Math.round(mean * (1 - spread)));
        }

        /** The engine's reply length: a request's max_tokens stops it sooner. */
        int most() {
            return (int) Math.round(mean * (1 + spread));
        }

        Scenario.RequestSpec next() {
            int tokens = spread == 0 ? mean : java.util.concurrent.ThreadLocalRandom.current().nextInt(fewest(), most() + 1);
            return new Scenario.RequestSpec(true, tokens, "default", "translate: hello world");
        }

        String describe() {
            return spread == 0 ? mean + "-token replies" : fewest() + " to " + most() + "-token replies";
        }
    }

    /**
     * One concurrency's measurements, both paths.
     *
     * @param gatewayOwn the gateway's own share of each gateway-path TTFT, as its
     *                   {@code cocoon_gateway_overhead_seconds} measures it, request by request
     * @param control    the path through the {@link SpliceProxy} in the gateway's place; null if not measured
     */
    public record Row(int concurrency, Recorder.TrendStats directTtft, Recorder.TrendStats gatewayTtft,
                      Recorder.TrendStats gatewayOwn, double directTokensPerS, double gatewayTokensPerS,
                      CpuPerToken directCpu, CpuPerToken gatewayCpu, long errors, Control control) {
        double addedP50() {
            return gatewayTtft.percentile(50) - directTtft.percentile(50);
        }

        double addedP99() {
            return gatewayTtft.percentile(99) - directTtft.percentile(99);
        }
    }

    /**
     * The control path, client → {@link SpliceProxy} → the worker's own endpoint; its {@code cpu}'s
     * gateway share is the proxy's event loops.
     */
    public record Control(Recorder.TrendStats ttft, double tokensPerS, CpuPerToken cpu) {}

    /**
     * Microseconds of CPU per token relayed: the whole process, and who in it spent them; and the
     * bytes the middle node's event loops allocated per token.
     */
    public record CpuPerToken(double process, double client, double gateway, double worker, double other, double gatewayBytes) {
        static CpuPerToken of(CpuMeter.Sample cpu, long tokens) {
            double per = 1e-3 / Math.max(1, tokens);
            return new CpuPerToken(cpu.process() * per, cpu.client() * per, cpu.gateway() * per, cpu.worker() * per,
                    cpu.other() * per, (double) cpu.gatewayBytes() / Math.max(1, tokens));
        }

        JsonObject json() {
            return new JsonObject().put("process", process).put("client", client).put("gateway", gateway).put("worker", worker)
                    .put("other", other).put("gateway_bytes_allocated", gatewayBytes);
        }
    }

    public record Report(Options options, WarmUp warmup, List<Row> rows, JsonObject idle) {
        public String table() {
            StringBuilder t = new StringBuilder(String.format(Locale.ROOT,
                    "gateway overhead: synthetic engine %.0f tok/s per stream, %s, %s phases x %d rounds, %d cores, "
                            + "transport %s (gateway %s)%n",
                    options.tokensPerSecond(), options.replies().describe(), K6Duration.format(options.phase()), options.rounds(),
                    Runtime.getRuntime().availableProcessors(), options.transport(), options.gatewayTransport()));
            t.append(warmup.lastCompileMillis() < 0 ? String.format("warm-up: none%n") : String.format(Locale.ROOT,
                    "warm-up: %.1f s, the JIT %s (%d ms compiling in the last %.1f s)%n", warmup.seconds(),
                    warmup.quiet() ? "quiet" : "STILL COMPILING at the limit", warmup.lastCompileMillis(), warmup.lastSliceSeconds()));
            t.append(String.format(Locale.ROOT, "%5s | %9s %9s %8s | %9s %9s %8s | %10s %10s %6s | %8s %8s | %6s%n",
                    "conc", "p50 dir", "p50 gw", "added", "p99 dir", "p99 gw", "added", "tok/s dir", "tok/s gw", "ratio",
                    "µs/t dir", "µs/t gw", "errors"));
            for (Row r : rows) {
                t.append(String.format(Locale.ROOT, "%5d | %7.2fms %7.2fms %6.2fms | %7.2fms %7.2fms %6.2fms | %10.0f %10.0f %5.2fx | %8.2f %8.2f | %6d%n",
                        r.concurrency(), r.directTtft().percentile(50), r.gatewayTtft().percentile(50), r.addedP50(),
                        r.directTtft().percentile(99), r.gatewayTtft().percentile(99), r.addedP99(),
                        r.directTokensPerS(), r.gatewayTokensPerS(), r.gatewayTokensPerS() / r.directTokensPerS(),
                        r.directCpu().process(), r.gatewayCpu().process(), r.errors()));
            }
            t.append(String.format(Locale.ROOT, "CPU µs per token by who spent it (direct path / gateway path); "
                    + "tokens per CPU-second of the gateway's event loops, and the bytes they allocated per token%n"));
            t.append(String.format(Locale.ROOT, "%5s | %15s %15s %15s %15s | %12s %9s%n", "conc", "client", "worker", "gateway",
                    "other (GC,JIT,log)", "gw tok/cpu-s", "gw B/tok"));
            for (Row r : rows) {
                CpuPerToken d = r.directCpu();
                CpuPerToken g = r.gatewayCpu();
                t.append(String.format(Locale.ROOT, "%5d | %6.2f / %6.2f %6.2f / %6.2f %6s / %6.2f %6.2f / %6.2f | %12.0f %9.0f%n",
                        r.concurrency(), d.client(), g.client(), d.worker(), g.worker(), "-", g.gateway(), d.other(), g.other(),
                        1e6 / g.gateway(), g.gatewayBytes()));
            }
            t.append(String.format(Locale.ROOT, "The gateway's own share of the gateway path's TTFT (arrival until the worker call "
                    + "was written, plus passing the first token on)%n"));
            t.append(String.format(Locale.ROOT, "%5s | %9s %9s %9s%n", "conc", "p50", "p99", "requests"));
            for (Row r : rows) {
                t.append(String.format(Locale.ROOT, "%5d | %7.3fms %7.3fms %9d%n", r.concurrency(), r.gatewayOwn().percentile(50),
                        r.gatewayOwn().percentile(99), r.gatewayOwn().count()));
            }
            if (rows.getFirst().control() != null) {
                t.append(String.format(Locale.ROOT, "Control: a byte-splicing TCP proxy in the gateway's place (one more process on "
                        + "the path, no work): what any proxy adds on this machine, and the gateway's TTFT beyond it%n"));
                t.append(String.format(Locale.ROOT, "%5s | %9s %9s | %9s %9s | %10s %15s%n", "conc", "added p50", "added p99",
                        "gw-ctl p50", "gw-ctl p99", "tok/s ctl", "proxy tok/cpu-s"));
                for (Row r : rows) {
                    Control c = r.control();
                    t.append(String.format(Locale.ROOT, "%5d | %7.2fms %7.2fms | %8.2fms %8.2fms | %10.0f %15.0f%n", r.concurrency(),
                            c.ttft().percentile(50) - r.directTtft().percentile(50), c.ttft().percentile(99) - r.directTtft().percentile(99),
                            r.gatewayTtft().percentile(50) - c.ttft().percentile(50), r.gatewayTtft().percentile(99) - c.ttft().percentile(99),
                            c.tokensPerS(), 1e6 / c.cpu().gateway()));
                }
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
                        .put("gateway_own_p50_ms", r.gatewayOwn().percentile(50))
                        .put("gateway_own_p99_ms", r.gatewayOwn().percentile(99))
                        .put("tokens_per_s_direct", r.directTokensPerS()).put("tokens_per_s_gateway", r.gatewayTokensPerS())
                        .put("cpu_us_per_token_direct", r.directCpu().json()).put("cpu_us_per_token_gateway", r.gatewayCpu().json())
                        .put("tokens_per_gateway_cpu_second", 1e6 / r.gatewayCpu().gateway())
                        .put("errors", r.errors())
                        .put("control", r.control() == null ? null : new JsonObject()
                                .put("ttft_p50_ms", r.control().ttft().percentile(50))
                                .put("ttft_p99_ms", r.control().ttft().percentile(99))
                                .put("added_p50_ms", r.control().ttft().percentile(50) - r.directTtft().percentile(50))
                                .put("added_p99_ms", r.control().ttft().percentile(99) - r.directTtft().percentile(99))
                                .put("tokens_per_s", r.control().tokensPerS())
                                .put("cpu_us_per_token", r.control().cpu().json())
                                .put("tokens_per_proxy_cpu_second", 1e6 / r.control().cpu().gateway())));
            }
            return new JsonObject().put("cores", Runtime.getRuntime().availableProcessors())
                    .put("tokens_per_s_per_stream", options.tokensPerSecond()).put("reply_tokens", options.replies().mean())
                    .put("reply_spread", options.replies().spread())
                    .put("phase_ms", options.phase().toMillis()).put("rounds", options.rounds())
                    .put("transport", options.transport().toString())
                    .put("gateway_transport", options.gatewayTransport().toString())
                    .put("warmup", new JsonObject().put("seconds", warmup.seconds()).put("jit_quiet", warmup.quiet())
                            .put("last_slice_compile_ms", warmup.lastCompileMillis()))
                    .put("rows", out).put("idle_streams", idle);
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
        WarmUp warmup;
        Vertx controlVertx = options.control() ? options.gatewayTransport().vertx() : null;
        try (LoopbackNetwork net = new LoopbackNetwork(1, options.tokensPerSecond(), 512, options.replies().most(),
                PaymentOptions.DEFAULTS, options.transport(), options.gatewayTransport())) {
            Target direct = net.direct(0);
            Route gateway = new Route(net.viaGateway(), net.cpu());
            Route control = null;
            if (controlVertx != null) {
                SpliceProxy proxy = SpliceProxy.start(controlVertx, direct.baseUrl(), LoopbackNetwork.GATEWAY_EVENT_LOOPS);
                control = new Route(proxy.target(direct), net.cpuThrough(controlVertx, "control"));
            }
            List<Route> routes = control == null ? List.of(new Route(direct, net.cpu()), gateway)
                    : List.of(new Route(direct, net.cpu()), gateway, control);
            int most = options.concurrencies().stream().max(Integer::compare).orElseThrow();
            HttpClient client = net.vertx().createHttpClient(new HttpClientOptions().setKeepAlive(true),
                    new PoolOptions().setHttp1MaxSize(most * routes.size()));
            warmup = warmUp(net, client, routes, options.replies(), most, options.warmup());
            for (int c : options.concurrencies()) {
                List<Totals> totals = routes.stream().map(r -> new Totals()).toList();
                for (int round = 0; round < options.rounds(); round++) {
                    for (int i = 0; i < routes.size(); i++) {
                        totals.get(i).add(phase(net, client, routes.get(i), options.replies(), c, options.phase()));
                    }
                }
                Totals d = totals.get(0);
                Totals g = totals.get(1);
                Recorder.Snapshot ds = d.snapshot();
                Recorder.Snapshot gs = g.snapshot();
                Control measuredControl = null;
                long controlErrors = 0;
                if (control != null) {
                    Totals k = totals.get(2);
                    Recorder.Snapshot ks = k.snapshot();
                    measuredControl = new Control(ks.trend(Metric.TTFT), ks.count(Metric.TOKENS) / k.seconds,
                            CpuPerToken.of(k.cpu, ks.count(Metric.TOKENS)));
                    controlErrors = ks.count(Metric.ERRORS);
                }
                rows.add(new Row(c, ds.trend(Metric.TTFT), gs.trend(Metric.TTFT), g.gatewayOwn(),
                        ds.count(Metric.TOKENS) / d.seconds, gs.count(Metric.TOKENS) / g.seconds,
                        CpuPerToken.of(d.cpu, ds.count(Metric.TOKENS)), CpuPerToken.of(g.cpu, gs.count(Metric.TOKENS)),
                        ds.count(Metric.ERRORS) + gs.count(Metric.ERRORS) + controlErrors, measuredControl));
            }
            client.close().await();
        } finally {
            if (controlVertx != null) {
                controlVertx.close().await();
            }
        }
        if (options.idleStreams() > 0) {
            idle = idleStreams(options.idleStreams(), options);
        }
        return new Report(options, warmup, rows, idle);
    }

    /**
     * How long the warm-up ran and whether the JIT had gone quiet: a slice of load on every path
     * during which the compilers spent under {@link #QUIET_COMPILE_SHARE} of the slice.
     * {@code lastCompileMillis} is -1 when no slice ran (no warm-up asked for).
     */
    public record WarmUp(double seconds, boolean quiet, long lastCompileMillis, double lastSliceSeconds) {}

    private static final Duration WARM_SLICE = Duration.ofSeconds(2);
    /** Past the two minutes idle streams wait to be counted: a phase bounds its calls itself. */
    private static final Duration CALL_TIMEOUT = Duration.ofMinutes(5);
    private static final double QUIET_COMPILE_SHARE = 0.05;

    /**
     * Load on every path in turn, in slices, until one round of slices passes with the JIT nearly
     * idle, or {@code limit} is spent. A fixed few seconds was not enough: with client, gateway
     * and worker compiling on 2 cores, C2 was still busy 20 s in, and the first measured phases
     * paid for it (5 s of warm-up: 7 ms added at 64 streams; 30 s: about 1 ms).
     */
    static WarmUp warmUp(LoopbackNetwork net, HttpClient client, List<Route> routes, Replies replies, int users,
                         Duration limit) {
        java.lang.management.CompilationMXBean jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        long start = System.nanoTime();
        long end = start + limit.toNanos();
        long compiled = -1;
        double slice = 0;
        Duration each = limit.compareTo(WARM_SLICE.multipliedBy(routes.size())) < 0 ? limit.dividedBy(routes.size()) : WARM_SLICE;
        // Only whole slices count: a short last one would look quiet because it was short.
        while (System.nanoTime() + each.toNanos() * routes.size() <= end) {
            long c0 = jit.getTotalCompilationTime();
            long s0 = System.nanoTime();
            for (Route route : routes) {
                phase(net, client, route, replies, users, each);
            }
            compiled = jit.getTotalCompilationTime() - c0;
            slice = (System.nanoTime() - s0) / 1e9;
            if (compiled < slice * 1000 * QUIET_COMPILE_SHARE) {
                return new WarmUp((System.nanoTime() - start) / 1e9, true, compiled, slice);
            }
        }
        return new WarmUp((System.nanoTime() - start) / 1e9, false, compiled, slice);
    }

    /** @param gatewayOwn the gateway's own share of the TTFT of each request it relayed in the phase */
    record PhaseResult(List<Outcome> outcomes, double seconds, CpuMeter.Sample cpu, long[] gatewayOwn) {}

    /** Phases of one path added up: their outcomes, wall time and CPU. */
    static final class Totals {
        final Recorder recorder = new Recorder();
        double seconds;
        CpuMeter.Sample cpu = CpuMeter.ZERO;
        final LongStream.Builder gatewayOwn = LongStream.builder();

        void add(PhaseResult p) {
            p.outcomes().forEach(o -> o.record(recorder));
            seconds += p.seconds();
            cpu = cpu.plus(p.cpu());
            Arrays.stream(p.gatewayOwn()).forEach(gatewayOwn);
        }

        Recorder.TrendStats gatewayOwn() {
            return new Recorder.TrendStats(gatewayOwn.build().sorted().toArray());
        }

        Recorder.Snapshot snapshot() {
            return recorder.snapshot(seconds);
        }
    }

    /** Where a phase's load goes, and the meter of who spends its CPU. */
    record Route(Target target, CpuMeter cpu) {}

    /** Closed loop: {@code users} streams, each sending the next request when the last ends, until the phase is over. */
    static PhaseResult phase(LoopbackNetwork net, HttpClient client, Route path, Replies replies, int users,
                             Duration length) {
        Vertx vertx = net.vertx();
        Target target = path.target();
        List<Outcome> outcomes = new ArrayList<>();
        ConcurrentLinkedQueue<Long> gatewayOwn = new ConcurrentLinkedQueue<>();
        net.onGatewayOverhead(gatewayOwn::add);
        CpuMeter.Sample cpu0 = path.cpu().read();
        long t0 = System.nanoTime();
        long deadline = t0 + length.toNanos();
        List<Future<Void>> all = new ArrayList<>();
        for (int u = 0; u < users; u++) {
            Promise<Void> done = Promise.promise();
            vertx.runOnContext(v -> loop(vertx, client, target, replies, deadline, outcomes, done));
            all.add(done.future());
        }
        try {
            Future.all(all).await(length.toMillis() + 60_000, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("a " + users + "-stream phase against " + target.baseUrl() + " did not end within a minute of its time");
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        net.onGatewayOverhead(null);
        synchronized (outcomes) {
            return new PhaseResult(List.copyOf(outcomes), seconds, path.cpu().read().minus(cpu0),
                    gatewayOwn.stream().mapToLong(Long::longValue).toArray());
        }
    }

    private static void loop(Vertx vertx, HttpClient client, Target target, Replies replies, long deadline, List<Outcome> outcomes,
                             Promise<Void> done) {
        if (System.nanoTime() > deadline) {
            done.complete();
            return;
        }
        new LoadCall(vertx, client, target, replies.next(), 0, CALL_TIMEOUT).start().onSuccess(outcome -> {
            synchronized (outcomes) {
                outcomes.add(outcome);
            }
            loop(vertx, client, target, replies, deadline, outcomes, done);
        });
    }

    /** Streams whose first token never comes in time (0.001 tokens/s): the heap they hold, gateway, worker and client together. */
    private static JsonObject idleStreams(int count, Options options) {
        try (LoopbackNetwork net = new LoopbackNetwork(1, 0.001, count + 16, 0, PaymentOptions.DEFAULTS, options.transport(),
                options.gatewayTransport())) {
            HttpClient client = net.vertx().createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                    .setHttp2ClearTextUpgrade(false), new PoolOptions().setHttp2MaxSize(8 + count / GatewayNode.MAX_CLIENT_STREAMS));
            long before = usedHeapAfterGc();
            List<LoadCall> calls = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                LoadCall call = new LoadCall(net.vertx(), client, net.viaGateway(), new Replies(16, 0).next(), 0, CALL_TIMEOUT);
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
