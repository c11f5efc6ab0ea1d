package org.cocoonjvm.gateway.bench;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.openai.SseParser;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;

/**
 * Gateway overhead, side by side in one run: the same streaming load sent straight to a worker's
 * own OpenAI endpoint and through the gateway, alternating phases so machine noise hits both.
 * The worker runs the synthetic engine (named so: it runs no model), so what differs between the
 * two paths is the gateway alone. Not a test: run it as docs/benchmarks.md says.
 *
 * <p>Reports (1) added time to first token, p50/p99, at {@code CONCURRENCY} streams; (2) tokens
 * forwarded per second per CPU-second the gateway adds; (3) heap held by {@code IDLE} idle streams.
 * With a fourth argument {@code payments}, it instead compares a gateway that pays its worker a
 * state per token (K = 1) with one that does not pay, alternating phases.
 */
public final class GatewayOverheadBenchmark {
    private static final String KEY = "sk-bench";

    public static void main(String[] args) throws Exception {
        int concurrency = Integer.parseInt(args[0]);
        int seconds = Integer.parseInt(args[1]);
        int idle = Integer.parseInt(args[2]);
        Vertx vertx = Vertx.vertx();
        JsonObject report = new JsonObject().put("concurrency", concurrency).put("phase_seconds", seconds)
                .put("cores", Runtime.getRuntime().availableProcessors());
        try {
            if (args.length > 3 && args[3].equals("payments")) {
                report.put("payments", payments(vertx, concurrency, seconds));
                System.out.println(report.encodePrettily());
                return;
            }
            report.put("ttft", ttft(vertx, concurrency, seconds));
            report.put("throughput", throughput(vertx, concurrency, seconds));
            if (idle > 0) {
                report.put("idle_streams", idleStreams(vertx, idle));
            }
        } finally {
            vertx.close().await();
        }
        System.out.println(report.encodePrettily());
        System.exit(0);
    }

    /** A gateway and one synthetic worker registered with it. */
    private record Setup(GatewayNode gateway, WorkerNode worker) {
        int gatewayPort() {
            return gateway.port();
        }

        int workerPort() {
            return URI.create(worker.endpoint()).getPort();
        }
    }

    private static Setup start(Vertx vertx, SyntheticEngine engine, SchedulerOptions scheduler) {
        return start(vertx, engine, scheduler, PaymentOptions.DEFAULTS);
    }

    private static Setup start(Vertx vertx, SyntheticEngine engine, SchedulerOptions scheduler, PaymentOptions payments) {
        InMemoryAccountBook accounts = new InMemoryAccountBook(Clock.systemUTC());
        accounts.open("bench");
        accounts.credit("bench", Long.MAX_VALUE / 4, "bench-grant");
        GatewayNode gateway = new GatewayNode(new GatewayOptions("127.0.0.1", 0,
                Map.of(BearerKeys.hash(KEY), new ApiKey("bench", "bench", KeyLimits.UNLIMITED)), BearerKeys.hash("admin"),
                1000, 1 << 20, RelayOptions.DEFAULTS, payments), new TonRequestBilling(accounts, m -> PriceSchedule.of(m, 2, 1)));
        vertx.deployVerticle(gateway).await();
        WorkerNode worker = new WorkerNode(engine, new WorkerOptions("bench-worker", "127.0.0.1", 0, KEY,
                SocketAddress.inetSocketAddress(gateway.port(), "127.0.0.1"), scheduler, 1000));
        vertx.deployVerticle(worker).await();
        return new Setup(gateway, worker);
    }

    // 1. Time to first token with CONCURRENCY streams open: 1 ms engine steps, 100-token replies
    //    (100 ms streams), closed-loop users, so the machine is busy streaming but not saturated.
    private static JsonObject ttft(Vertx vertx, int concurrency, int seconds) throws Exception {
        Setup s = start(vertx, new SyntheticEngine(1000, 512, 4096, 100), new SchedulerOptions(4096, 512, 50));
        HttpClient client = client(vertx, concurrency);
        run(client, s.workerPort(), concurrency, 1, null);   // warm-up, both paths
        run(client, s.gatewayPort(), concurrency, 1, null);
        List<Long> direct = new ArrayList<>();
        List<Long> viaGateway = new ArrayList<>();
        for (int round = 0; round < 2; round++) {
            run(client, s.workerPort(), concurrency, seconds, direct);
            run(client, s.gatewayPort(), concurrency, seconds, viaGateway);
        }
        long[] d = direct.stream().mapToLong(Long::longValue).sorted().toArray();
        long[] g = viaGateway.stream().mapToLong(Long::longValue).sorted().toArray();
        return new JsonObject()
                .put("requests_direct", d.length).put("requests_gateway", g.length)
                .put("direct_p50_ms", ms(pct(d, 50))).put("direct_p99_ms", ms(pct(d, 99)))
                .put("gateway_p50_ms", ms(pct(g, 50))).put("gateway_p99_ms", ms(pct(g, 99)))
                .put("added_p50_ms", ms(pct(g, 50) - pct(d, 50))).put("added_p99_ms", ms(pct(g, 99) - pct(d, 99)));
    }

    // 2. Forwarded tokens: fast engine (20k tokens/s a stream), long replies; compare CPU per token.
    private static JsonObject throughput(Vertx vertx, int concurrency, int seconds) throws Exception {
        Setup s = start(vertx, new SyntheticEngine(20_000, 512, 100_000, 2_000), new SchedulerOptions(4096, 512, 50));
        HttpClient client = client(vertx, concurrency);
        run(client, s.gatewayPort(), concurrency, 1, null);
        double[] direct = tokensAndCpu(client, s.workerPort(), concurrency, seconds);
        double[] viaGateway = tokensAndCpu(client, s.gatewayPort(), concurrency, seconds);
        double cpuPerTokenDirect = direct[1] / direct[0];
        double cpuPerTokenGateway = viaGateway[1] / viaGateway[0];
        double gatewayCpuPerToken = cpuPerTokenGateway - cpuPerTokenDirect;
        return new JsonObject()
                .put("direct_tokens_per_s", direct[0] / seconds).put("gateway_tokens_per_s", viaGateway[0] / seconds)
                .put("direct_cpu_us_per_token", cpuPerTokenDirect * 1e6).put("gateway_cpu_us_per_token", cpuPerTokenGateway * 1e6)
                .put("gateway_added_cpu_us_per_token", gatewayCpuPerToken * 1e6)
                .put("gateway_tokens_per_cpu_second", 1 / gatewayCpuPerToken);
    }

    // 4. Per-token payment states (K = 1) against no payments: two gateway+worker pairs, same load.
    private static JsonObject payments(Vertx vertx, int concurrency, int seconds) throws Exception {
        SchedulerOptions scheduler = new SchedulerOptions(4096, 512, 50);
        Setup off = start(vertx, new SyntheticEngine(20_000, 512, 100_000, 2_000), scheduler, PaymentOptions.DISABLED);
        Setup perToken = start(vertx, new SyntheticEngine(20_000, 512, 100_000, 2_000), scheduler,
                new PaymentOptions(true, 1, 200, Long.MAX_VALUE));
        HttpClient client = client(vertx, concurrency);
        run(client, off.gatewayPort(), concurrency, 1, null);
        run(client, perToken.gatewayPort(), concurrency, 1, null);
        double[] sumOff = new double[2];
        double[] sumOn = new double[2];
        JsonArray perRound = new JsonArray();
        int rounds = 4;
        for (int round = 0; round < rounds; round++) {
            // Alternate which goes first, so that a warming or cooling machine favours neither.
            double[] a;
            double[] b;
            if (round % 2 == 0) {
                a = tokensAndCpu(client, off.gatewayPort(), concurrency, seconds);
                b = tokensAndCpu(client, perToken.gatewayPort(), concurrency, seconds);
            } else {
                b = tokensAndCpu(client, perToken.gatewayPort(), concurrency, seconds);
                a = tokensAndCpu(client, off.gatewayPort(), concurrency, seconds);
            }
            perRound.add(new JsonObject().put("off_tokens_per_s", a[0] / seconds).put("k1_tokens_per_s", b[0] / seconds));
            for (int i = 0; i < 2; i++) {
                sumOff[i] += a[i];
                sumOn[i] += b[i];
            }
        }
        return new JsonObject().put("rounds", perRound)
                .put("off_tokens_per_s", sumOff[0] / ((double) rounds * seconds)).put("k1_tokens_per_s", sumOn[0] / ((double) rounds * seconds))
                .put("k1_throughput_ratio", sumOn[0] / sumOff[0])
                .put("off_cpu_us_per_token", sumOff[1] / sumOff[0] * 1e6).put("k1_cpu_us_per_token", sumOn[1] / sumOn[0] * 1e6)
                .put("k1_states_signed", seqnoOf(vertx, perToken));
    }

    /** The seqno of the per-token worker's channel: how many states were signed. */
    private static long seqnoOf(Vertx vertx, Setup s) throws Exception {
        return vertx.createHttpClient().request(HttpMethod.GET, s.workerPort(), "127.0.0.1", "/status")
                .compose(r -> r.send().compose(HttpClientResponse::body))
                .map(b -> b.toJsonObject().getJsonArray("channels").getJsonObject(0).getLong("seqno"))
                .await(10, TimeUnit.SECONDS);
    }

    private static double[] tokensAndCpu(HttpClient client, int port, int concurrency, int seconds) throws Exception {
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long cpu0 = os.getProcessCpuTime();
        AtomicLong tokens = new AtomicLong();
        runCounting(client, port, concurrency, seconds, tokens);
        return new double[] {tokens.get(), (os.getProcessCpuTime() - cpu0) / 1e9};
    }

    // 3. Idle streams: the first token never comes in time; measure the heap they hold.
    private static JsonObject idleStreams(Vertx vertx, int count) throws Exception {
        Setup s = start(vertx, new SyntheticEngine(0.001, count + 16, 4096), new SchedulerOptions(count + 16, 512, 50));
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false), new PoolOptions().setHttp2MaxSize(8));
        long before = usedHeapAfterGc();
        List<Future<?>> opened = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            opened.add(client.request(post(s.gatewayPort())).compose(r -> r.send(body(true)))
                    .map(r -> r.handler(b -> { })));
        }
        Future.all(opened).await(120, TimeUnit.SECONDS);
        long held = usedHeapAfterGc() - before;
        return new JsonObject().put("streams", count).put("heap_mib_whole_process", held / 1048576.0)
                .put("heap_kib_per_stream_whole_process", held / 1024.0 / count)
                .put("note", "gateway, worker and client share the process: an upper bound for the gateway");
    }

    private static HttpClient client(Vertx vertx, int concurrency) {
        return vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true), new PoolOptions().setHttp1MaxSize(concurrency * 2));
    }

    /** Closed loop: each user sends a streamed request, waits for its end, sends the next. */
    private static void run(HttpClient client, int port, int users, int seconds, List<Long> ttfts) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        List<Future<?>> all = new ArrayList<>();
        for (int u = 0; u < users; u++) {
            Promise<Void> done = Promise.promise();
            loop(client, port, deadline, ttfts, null, done);
            all.add(done.future());
        }
        Future.all(all).await(seconds + 60L, TimeUnit.SECONDS);
    }

    private static void runCounting(HttpClient client, int port, int users, int seconds, AtomicLong tokens) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        List<Future<?>> all = new ArrayList<>();
        for (int u = 0; u < users; u++) {
            Promise<Void> done = Promise.promise();
            loop(client, port, deadline, null, tokens, done);
            all.add(done.future());
        }
        Future.all(all).await(seconds + 60L, TimeUnit.SECONDS);
    }

    private static void loop(HttpClient client, int port, long deadline, List<Long> ttfts, AtomicLong tokens, Promise<Void> done) {
        if (System.nanoTime() > deadline) {
            done.complete();
            return;
        }
        long start = System.nanoTime();
        long[] first = {0};
        client.request(post(port)).compose(r -> r.send(body(true))).onComplete(ar -> {
            if (ar.failed()) {
                done.fail(ar.cause());
                return;
            }
            ar.result().handler(new SseParser(1 << 20, data -> {
                if (first[0] == 0) {
                    first[0] = System.nanoTime() - start;
                }
                if (tokens != null && data.startsWith("{") && data.contains("\"usage\"")) {
                    tokens.addAndGet(new JsonObject(data).getJsonObject("usage").getLong("completion_tokens"));
                }
            }));
            ar.result().endHandler(v -> {
                if (ttfts != null) {
                    synchronized (ttfts) {
                        ttfts.add(first[0]);
                    }
                }
                loop(client, port, deadline, ttfts, tokens, done);
            });
        });
    }

    private static RequestOptions post(int port) {
        return new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port).setURI("/v1/chat/completions")
                .putHeader("Authorization", "Bearer " + KEY).putHeader("Content-Type", "application/json");
    }

    private static String body(boolean stream) {
        return "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"translate: hello world\"}],"
                + "\"stream\":" + stream + ",\"stream_options\":{\"include_usage\":true}}";
    }

    private static long usedHeapAfterGc() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(200);
        }
        Runtime rt = Runtime.getRuntime();
        return rt.totalMemory() - rt.freeMemory();
    }

    private static long pct(long[] sorted, int p) {
        return sorted.length == 0 ? 0 : sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100.0 * sorted.length) - 1)];
    }

    private static double ms(long nanos) {
        return Math.round(nanos / 1e3) / 1e3;
    }
}
