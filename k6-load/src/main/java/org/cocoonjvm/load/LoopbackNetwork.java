package org.cocoonjvm.load;

import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.ConnectionOptions;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.ShutdownOptions;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.transport.NetTransport;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;

/**
 * A real gateway and real workers running the {@link SyntheticEngine} (no model: words at a fixed
 * step rate), each node a verticle on its own loopback port, for benchmarks and the CI scenarios.
 * Clients (on {@link #vertx()}), the gateway and the workers each get a Vert.x instance of their
 * own, as separate processes would: sharing one, a client and a worker landed on the same event
 * loop, and the direct path then crossed no thread at all, a baseline no real client gets. The
 * network owns all three; closing it stops everything. The one key is unlimited and its account holds far more than any run can spend, so what is
 * measured is relaying, not refusals.
 */
public final class LoopbackNetwork implements AutoCloseable {
    public static final String API_KEY = "sk-load";
    /** The gateway's event loops: 2, one per core of the machine the targets are for. */
    static final int GATEWAY_EVENT_LOOPS = 2;
    private static final String ACCOUNT = "load";
    /**
     * How long the in-memory account book keeps an ended request's outcome (its own default: 10
     * minutes). A duplicate settle in a load run comes within milliseconds, and the gateways this
     * network stands for keep those outcomes in their database, not in their heap: here 10 minutes
     * of them (~700 bytes per request) were copied by every young collection until tenured, which
     * pauses client, gateway and worker alike (docs/benchmarks.md, "The load driver's JSON").
     */
    static final Duration ENDED_RETENTION = Duration.ofSeconds(2);

    private final Vertx vertx;
    private final Vertx gatewayVertx;
    private final Vertx workerVertx;
    private GatewayNode gateway;
    private final List<WorkerNode> workers = new ArrayList<>();
    private CpuMeter cpu;
    /** Where the gateway's own share of each relayed request's TTFT goes as requests end; null: nowhere. */
    private volatile LongConsumer gatewayOverheads;

    /**
     * @param workerCount     workers registered with the gateway
     * @param tokensPerSecond each worker's engine steps per second (so tokens/s per stream)
     * @param maxBatch        sequences per step, each worker
     * @param replyTokens     every reply's length; 0 for the engine's natural 24 to 63
     */
    public LoopbackNetwork(int workerCount, double tokensPerSecond, int maxBatch, int replyTokens) {
        this(workerCount, tokensPerSecond, maxBatch, replyTokens, PaymentOptions.DEFAULTS);
    }

    /** @param payments how the gateway pays its workers (K, T, or off) */
    public LoopbackNetwork(int workerCount, double tokensPerSecond, int maxBatch, int replyTokens, PaymentOptions payments) {
        this(workerCount, tokensPerSecond, maxBatch, replyTokens, payments, NetTransport.NIO, NetTransport.NIO);
    }

    /**
     * @param transport        the clients' and workers' socket layer
     * @param gatewayTransport the gateway's (a benchmark can change it alone, the direct path staying as it was)
     */
    public LoopbackNetwork(int workerCount, double tokensPerSecond, int maxBatch, int replyTokens, PaymentOptions payments,
                           NetTransport transport, NetTransport gatewayTransport) {
        this.vertx = transport.vertx();
        this.gatewayVertx = gatewayTransport.vertx();
        this.workerVertx = transport.vertx();
        try {
            start(workerCount, tokensPerSecond, maxBatch, replyTokens, payments);
            cpu = new CpuMeter(vertx, gatewayVertx, workerVertx);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private void start(int workerCount, double tokensPerSecond, int maxBatch, int replyTokens, PaymentOptions payments) {
        InMemoryAccountBook accounts = new InMemoryAccountBook(Clock.systemUTC(), ENDED_RETENTION);
        accounts.open(ACCOUNT);
        accounts.credit(ACCOUNT, Long.MAX_VALUE / 4, "load-grant");
        gateway = new GatewayNode(new GatewayOptions("127.0.0.1", 0,
                Map.of(BearerKeys.hash(API_KEY), new ApiKey("load", ACCOUNT, KeyLimits.UNLIMITED)), BearerKeys.hash("admin-load"),
                1_000, 1 << 20, RelayOptions.DEFAULTS, payments, GATEWAY_EVENT_LOOPS, ConnectionOptions.DEFAULTS, ShutdownOptions.DEFAULTS, false, null), new TonRequestBilling(accounts, Runnable::run, m -> PriceSchedule.of(m, 2, 1), null));
        gateway.observe(outcome -> {
            LongConsumer to = gatewayOverheads;
            if (to != null && outcome.overheadNanos() >= 0) {
                to.accept(outcome.overheadNanos());
            }
        });
        gatewayVertx.deployVerticle(gateway).await();
        // Room for every stream a load run can open: refusals would measure the queue, not the relay.
        SchedulerOptions scheduler = new SchedulerOptions(4096, 512, 20);
        for (int i = 0; i < workerCount; i++) {
            WorkerNode worker = new WorkerNode(new SyntheticEngine(tokensPerSecond, maxBatch, 4096, replyTokens),
                    new WorkerOptions("load-worker-" + (i + 1), "127.0.0.1", 0, API_KEY,
                            SocketAddress.inetSocketAddress(gateway.port(), "127.0.0.1"), scheduler, 1_000));
            workerVertx.deployVerticle(worker).compose(id -> worker.registered()).await();
            workers.add(worker);
        }
    }

    /** Through the gateway. */
    public Target viaGateway() {
        return new Target(URI.create("http://127.0.0.1:" + gateway.port()), API_KEY, SyntheticEngine.MODEL_NAME);
    }

    /** Straight to worker {@code index}'s own OpenAI endpoint: the no-gateway baseline. */
    public Target direct(int index) {
        return new Target(URI.create(workers.get(index).endpoint()), API_KEY, SyntheticEngine.MODEL_NAME);
    }

    /**
     * From now on, gives {@code to} the gateway's own share of the time to first token of each
     * relayed request as it ends (arrival until the worker call was written, plus passing the first
     * token on), on the gateway's event loops; null stops.
     */
    public void onGatewayOverhead(LongConsumer to) {
        gatewayOverheads = to;
    }

    /** Requests the gateway has routed and not yet seen end, over all workers. */
    public int inFlight() {
        return gateway.registry().all().stream().mapToInt(RegisteredWorker::inFlight).sum();
    }

    /** CPU spent by the clients', the gateway's and the workers' event loops. */
    public CpuMeter cpu() {
        return cpu;
    }

    /** CPU spent by the clients', {@code middle}'s and the workers' event loops: another node measured in the gateway's place. */
    CpuMeter cpuThrough(Vertx middle, String role) {
        return new CpuMeter(vertx, middle, role, workerVertx);
    }

    /** The clients' Vert.x instance. */
    public Vertx vertx() {
        return vertx;
    }

    @Override
    public void close() {
        // Workers first: a gateway that outlives them sees their sessions end, not hang.
        workerVertx.close().await();
        gatewayVertx.close().await();
        vertx.close().await();
    }
}
