package org.cocoonjvm.gateway.bench;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
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
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.attest.tee.QuoteSourceException;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.openai.SseParser;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.cocoonjvm.worker.serve.WorkerTls;

/**
 * Gateway overhead, side by side in one run: the same streaming load sent straight to a worker's
 * own OpenAI endpoint and through the gateway, alternating phases so machine noise hits both.
 * The worker runs the synthetic engine (named so: it runs no model), so what differs between the
 * two paths is the gateway alone. Not a test: run it as docs/benchmarks.md says.
 *
 * <p>Reports (1) added time to first token, p50/p99, at {@code CONCURRENCY} streams; (2) tokens
 * forwarded per second per CPU-second the gateway adds; (3) heap held by {@code IDLE} idle streams.
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
        if (args.length > 3 && args[3].equals("ratls")) {
            try {
                report.put("ttft_plaintext_vs_ratls", ttftRaTls(vertx, concurrency, seconds));
            } finally {
                vertx.close().await();
            }
            System.out.println(report.encodePrettily());
            System.exit(0);
        }
        try {
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
        return start(vertx, engine, scheduler, false);
    }

    /** @param ratls gateway and worker with dev-TEE attestation: mutual RA-TLS between them, clients still on plain HTTP */
    private static Setup start(Vertx vertx, SyntheticEngine engine, SchedulerOptions scheduler, boolean ratls) {
        GatewayAttestation gatewayTee = null;
        WorkerTls workerTee = null;
        if (ratls) {
            Clock clock = Clock.systemUTC();
            DevTee tee = DevTee.generate(clock);
            Policy dev = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);
            try {
                gatewayTee = new GatewayAttestation(RaTlsNode.dev(tee, dev, clock), 0, clock);
                workerTee = new WorkerTls(RaTlsNode.dev(tee, dev, clock));
            } catch (QuoteSourceException e) {
                throw new IllegalStateException(e);
            }
        }
        InMemoryAccountBook accounts = new InMemoryAccountBook(Clock.systemUTC());
        accounts.open("bench");
        accounts.credit("bench", Long.MAX_VALUE / 4, "bench-grant");
        GatewayNode gateway = new GatewayNode(new GatewayOptions("127.0.0.1", 0,
                Map.of(BearerKeys.hash(KEY), new ApiKey("bench", "bench", KeyLimits.UNLIMITED)), BearerKeys.hash("admin"),
                1000, 1 << 20, RelayOptions.DEFAULTS), new TonRequestBilling(accounts, m -> PriceSchedule.of(m, 2, 1)), gatewayTee);
        vertx.deployVerticle(gateway).await();
        WorkerNode worker = new WorkerNode(engine, new WorkerOptions("bench-worker", "127.0.0.1", 0, KEY,
                SocketAddress.inetSocketAddress(ratls ? gateway.workerPort() : gateway.port(), "127.0.0.1"), scheduler, 1000),
                workerTee);
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

    // 1b. The same load through a plaintext gateway and through one talking RA-TLS to its worker
    //     (clients on plain HTTP to both), alternating phases: what RA-TLS adds once connections exist.
    private static JsonObject ttftRaTls(Vertx vertx, int concurrency, int seconds) throws Exception {
        Setup plain = start(vertx, new SyntheticEngine(1000, 512, 4096, 100), new SchedulerOptions(4096, 512, 50), false);
        Setup ratls = start(vertx, new SyntheticEngine(1000, 512, 4096, 100), new SchedulerOptions(4096, 512, 50), true);
        HttpClient client = client(vertx, concurrency);
        run(client, plain.gatewayPort(), concurrency, 1, null);
        run(client, ratls.gatewayPort(), concurrency, 1, null);
        List<Long> p = new ArrayList<>();
        List<Long> r = new ArrayList<>();
        for (int round = 0; round < 2; round++) {
            run(client, plain.gatewayPort(), concurrency, seconds, p);
            run(client, ratls.gatewayPort(), concurrency, seconds, r);
        }
        long[] a = p.stream().mapToLong(Long::longValue).sorted().toArray();
        long[] b = r.stream().mapToLong(Long::longValue).sorted().toArray();
        return new JsonObject().put("requests_plaintext", a.length).put("requests_ratls", b.length)
                .put("plaintext_p50_ms", ms(pct(a, 50))).put("plaintext_p99_ms", ms(pct(a, 99)))
                .put("ratls_p50_ms", ms(pct(b, 50))).put("ratls_p99_ms", ms(pct(b, 99)))
                .put("added_p50_ms", ms(pct(b, 50) - pct(a, 50))).put("added_p99_ms", ms(pct(b, 99) - pct(a, 99)));
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
