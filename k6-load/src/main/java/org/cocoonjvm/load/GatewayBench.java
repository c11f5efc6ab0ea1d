package org.cocoonjvm.load;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
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

        RequestSpec next() {
            int tokens = spread == 0 ? mean : java.util.concurrent.ThreadLocalRandom.current().nextInt(fewest(), most() + 1);
            return RequestSpec.of(true, tokens, "default", "translate: hello world");
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
     * @param pauses     the process's stop-the-world pauses during the measured phases, and which requests they caught
     */
    public record Row(int concurrency, Recorder.TrendStats directTtft, Recorder.TrendStats gatewayTtft,
                      Recorder.TrendStats gatewayOwn, double directTokensPerS, double gatewayTokensPerS,
                      CpuPerToken directCpu, CpuPerToken gatewayCpu, long errors, Control control, PauseShare pauses) {
        double addedP50() {
            return gatewayTtft.percentile(50) - directTtft.percentile(50);
        }

        double addedP99() {
            return gatewayTtft.percentile(99) - directTtft.percentile(99);
        }
    }

    /**
     * The stop-the-world pauses of one concurrency's measured phases ({@link Pauses}), and of each
     * path the share of requests whose wait for the first token a pause overlapped and the TTFT of
     * the others: the tail a pause of the shared heap cannot have made.
     */
    public record PauseShare(int count, double totalMillis, double directOverlapped, double gatewayOverlapped,
                             Recorder.TrendStats directUnpaused, Recorder.TrendStats gatewayUnpaused) {
        static PauseShare of(Pauses.Spans spans, Totals direct, Totals gateway) {
            return new PauseShare(spans.count(), spans.totalMillis(), direct.overlapped(spans), gateway.overlapped(spans),
                    direct.unpausedTtft(spans), gateway.unpausedTtft(spans));
        }

        double addedP99() {
            return gatewayUnpaused.percentile(99) - directUnpaused.percentile(99);
        }
    }

    /**
     * The control path, client → {@link SpliceProxy} → the worker's own endpoint; its {@code cpu}'s
     * gateway share is the proxy's event loops.
     */
    public record Control(Recorder.TrendStats ttft, double tokensPerS, CpuPerToken cpu) {}

    /**
     * Microseconds of CPU per token relayed: the whole process, and who in it spent them; and the
     * bytes allocated per token by the middle node's event loops and by the whole process.
     */
    public record CpuPerToken(double process, double client, double gateway, double worker, double other, double gatewayBytes,
                              double processBytes) {
        static CpuPerToken of(CpuMeter.Sample cpu, long tokens) {
            double per = 1e-3 / Math.max(1, tokens);
            double perBytes = 1.0 / Math.max(1, tokens);
            return new CpuPerToken(cpu.process() * per, cpu.client() * per, cpu.gateway() * per, cpu.worker() * per,
                    cpu.other() * per, cpu.gatewayBytes() * perBytes, cpu.processBytes() * perBytes);
        }

        JsonObject json() {
            return new JsonObject().put("process", process).put("client", client).put("gateway", gateway).put("worker", worker)
                    .put("other", other).put("gateway_bytes_allocated", gatewayBytes).put("process_bytes_allocated", processBytes);
        }
    }

    public record Report(Options options, WarmUp warmup, List<Row> rows, JsonObject idle) {
        public String table() {
            return ReportFormat.table(this);
        }

        public JsonObject json() {
            return ReportFormat.json(this);
        }

        /** TTFT CDFs for both paths at every concurrency, and tokens/s against concurrency. */
        public List<Path> writePlots(Path dir) throws IOException {
            return ReportFormat.writePlots(this, dir);
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
                Pauses.Spans spans;
                try (Pauses pauses = Pauses.start()) {
                    for (int round = 0; round < options.rounds(); round++) {
                        for (int i = 0; i < routes.size(); i++) {
                            phase(net, client, routes.get(i), options.replies(), c, options.phase(), totals.get(i));
                        }
                    }
                    spans = pauses.stop();
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
                        ds.count(Metric.ERRORS) + gs.count(Metric.ERRORS) + controlErrors, measuredControl,
                        PauseShare.of(spans, d, g)));
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
                phase(net, client, route, replies, users, each, new Totals());
            }
            compiled = jit.getTotalCompilationTime() - c0;
            slice = (System.nanoTime() - s0) / 1e9;
            if (compiled < slice * 1000 * QUIET_COMPILE_SHARE) {
                return new WarmUp((System.nanoTime() - start) / 1e9, true, compiled, slice);
            }
        }
        return new WarmUp((System.nanoTime() - start) / 1e9, false, compiled, slice);
    }

    /**
     * Phases of one path added up: what their requests recorded, wall time, CPU, and the gateway's
     * own share of the TTFT of each request it relayed. Requests record as they end rather than at
     * the phase's end: a phase's outcomes kept until then were garbage every young collection
     * copied, which lengthened the pauses both paths wait out (docs/benchmarks.md, "The load
     * driver's own garbage").
     */
    static final class Totals {
        final Recorder recorder = new Recorder();
        double seconds;
        CpuMeter.Sample cpu = CpuMeter.ZERO;
        final LongStream.Builder gatewayOwn = LongStream.builder();
        /**
         * Each request's start and time to first token, {@code waits} of them: which ones a pause
         * overlapped is known only once the phases' pauses are read.
         */
        private long[] starts = new long[1024];
        private long[] ttfts = new long[1024];
        private int waits;

        synchronized void record(Outcome outcome) {
            outcome.record(recorder);
            if (outcome.ttftNanos() < 0) {
                return;
            }
            if (waits == starts.length) {
                starts = Arrays.copyOf(starts, 2 * waits);
                ttfts = Arrays.copyOf(ttfts, 2 * waits);
            }
            starts[waits] = outcome.startNanos();
            ttfts[waits++] = outcome.ttftNanos();
        }

        synchronized double overlapped(Pauses.Spans spans) {
            long caught = IntStream.range(0, waits).filter(i -> spans.overlap(starts[i], starts[i] + ttfts[i])).count();
            return waits == 0 ? 0 : (double) caught / waits;
        }

        synchronized Recorder.TrendStats unpausedTtft(Pauses.Spans spans) {
            return new Recorder.TrendStats(IntStream.range(0, waits).filter(i -> !spans.overlap(starts[i], starts[i] + ttfts[i]))
                    .mapToLong(i -> ttfts[i]).sorted().toArray());
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
    static void phase(LoopbackNetwork net, HttpClient client, Route path, Replies replies, int users, Duration length,
                      Totals into) {
        Vertx vertx = net.vertx();
        Target target = path.target();
        ConcurrentLinkedQueue<Long> gatewayOwn = new ConcurrentLinkedQueue<>();
        net.onGatewayOverhead(gatewayOwn::add);
        CpuMeter.Sample cpu0 = path.cpu().read();
        long t0 = System.nanoTime();
        long deadline = t0 + length.toNanos();
        List<Future<Void>> all = new ArrayList<>();
        for (int u = 0; u < users; u++) {
            Promise<Void> done = Promise.promise();
            vertx.runOnContext(v -> loop(vertx, client, target, replies, deadline, into, done));
            all.add(done.future());
        }
        try {
            Future.all(all).await(length.toMillis() + 60_000, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("a " + users + "-stream phase against " + target.baseUrl() + " did not end within a minute of its time");
        }
        into.seconds += (System.nanoTime() - t0) / 1e9;
        net.onGatewayOverhead(null);
        into.cpu = into.cpu.plus(path.cpu().read().minus(cpu0));
        gatewayOwn.forEach(into.gatewayOwn::add);
    }

    private static void loop(Vertx vertx, HttpClient client, Target target, Replies replies, long deadline, Totals into,
                             Promise<Void> done) {
        if (System.nanoTime() > deadline) {
            done.complete();
            return;
        }
        new LoadCall(vertx, client, target, replies.next(), 0, Scenario.Abort.NEVER, CALL_TIMEOUT).start().onSuccess(outcome -> {
            into.record(outcome);
            loop(vertx, client, target, replies, deadline, into, done);
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
                LoadCall call = new LoadCall(net.vertx(), client, net.viaGateway(), new Replies(16, 0).next(), 0, Scenario.Abort.NEVER,
                        CALL_TIMEOUT);
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
