package org.cocoonjvm.gateway;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.netty.util.concurrent.EventExecutor;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.BiFunction;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.InMemoryChannelJournal;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.attest.ratls.RaTlsClientProxy;
import org.cocoonjvm.attest.ratls.RaTlsVerifier;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.OnChainSettlement;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.cocoonjvm.worker.serve.WorkerTls;

/**
 * A real gateway and real workers (synthetic engine) on loopback ports, plus a real HTTP client.
 * Each worker runs in its own Vert.x instance so a test can take one down alone.
 */
final class TestNetwork implements AutoCloseable {
    static final String API_KEY = "sk-test";
    static final String ADMIN_KEY = "admin-test";

    final Vertx vertx = Vertx.vertx();
    final GatewayNode gateway;
    private final String gatewayDeployment;
    final List<Vertx> workerVertx = new ArrayList<>();
    private final List<CountDownLatch> thaws = new ArrayList<>();
    final List<WorkerNode> workers = new ArrayList<>();
    final HttpClient http;
    /** Where clients reach the gateway: its client port, or the RA-TLS client proxy in front of it. */
    final int clientPort;
    /** Where every call of {@link #http} starts (see {@link #onClientContext}). */
    private final Context clientContext = vertx.getOrCreateContext();

    /** The test account starts with 1000 TON; prices are Cocoon's test deploy values (2 and 1 nanoTON a token). */
    static final long START_BALANCE = 1_000_000_000_000L;
    /** The gateway's body limit unless a test asks for another: small, so that a 413 is cheap to provoke. */
    static final long BODY_LIMIT = 64 * 1024;
    static final String ACCOUNT = "acct-test";

    /** What {@code /v1/account} tells clients to pay into. */
    static final String DEPOSIT_ADDRESS = "UQ-test-gateway-wallet";

    final AccountBook accounts;
    /** The gateway's billing over {@link #accounts}: a restart's recovery runs through it, as the launcher's does. */
    final TonRequestBilling billing;

    TestNetwork() {
        this(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, START_BALANCE);
    }

    /** A gateway that takes bodies up to {@code maxBodyBytes}. */
    TestNetwork(long maxBodyBytes) {
        this(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, START_BALANCE, PaymentOptions.DEFAULTS,
                new InMemoryAccountBook(Clock.systemUTC()), Runnable::run, new InMemoryChannelJournal(), null, 1, null, maxBodyBytes,
                ConnectionOptions.DEFAULTS, ShutdownOptions.DEFAULTS);
    }

    /** A gateway whose client connections have these timeouts. */
    TestNetwork(ConnectionOptions connections) {
        this(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, START_BALANCE, PaymentOptions.DEFAULTS,
                new InMemoryAccountBook(Clock.systemUTC()), Runnable::run, new InMemoryChannelJournal(), null, 1, null, BODY_LIMIT,
                connections, ShutdownOptions.DEFAULTS);
    }

    /** A gateway that stops this way: a drain with {@code /ready} at 503, then a grace for running streams. */
    static TestNetwork stopping(ShutdownOptions shutdown) {
        return stopping(shutdown, PaymentOptions.DEFAULTS);
    }

    /** The same, paying workers this way. */
    static TestNetwork stopping(ShutdownOptions shutdown, PaymentOptions payments) {
        return new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, START_BALANCE, payments,
                new InMemoryAccountBook(Clock.systemUTC()), Runnable::run, new InMemoryChannelJournal(), null, 1, null, BODY_LIMIT,
                ConnectionOptions.DEFAULTS, shutdown);
    }

    /** A gateway with attestation: workers register on its RA-TLS worker port. */
    /**
     * An attested gateway whose client port serves RA-TLS: this network's HTTP client reaches it as
     * an OpenAI client on the same host would, through a {@link RaTlsClientProxy} that checks the
     * gateway's certificate with {@code gatewayCheck} on every connection.
     */
    TestNetwork(GatewayAttestation attestation, RaTlsVerifier gatewayCheck) {
        this(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, START_BALANCE, PaymentOptions.DEFAULTS,
                new InMemoryAccountBook(Clock.systemUTC()), Runnable::run, new InMemoryChannelJournal(), null, 1, attestation, BODY_LIMIT,
                ConnectionOptions.DEFAULTS, ShutdownOptions.DEFAULTS, gatewayCheck);
    }

    TestNetwork(KeyLimits limits, RelayOptions relay, long balance) {
        this(limits, relay, balance, PaymentOptions.DEFAULTS);
    }

    TestNetwork(KeyLimits limits, RelayOptions relay, long balance, PaymentOptions payments) {
        this(limits, relay, balance, payments, null, 1);
    }

    /**
     * @param onChain           opens each worker's channel on chain; null keeps channels off chain
     * @param workerFeePerToken what a worker earns a token (clients pay twice that): large enough
     *                          on chain for a few requests to be worth a close
     */
    TestNetwork(KeyLimits limits, RelayOptions relay, long balance, PaymentOptions payments, ChannelOnChain onChain,
                long workerFeePerToken) {
        this(limits, relay, balance, payments, new InMemoryAccountBook(Clock.systemUTC()), Runnable::run,
                new InMemoryChannelJournal(), onChain, workerFeePerToken, null, BODY_LIMIT, ConnectionOptions.DEFAULTS, ShutdownOptions.DEFAULTS);
    }

    /** The same, keeping the gateway's payment key and channels in {@code channels}: a second one on it is a restart. */
    TestNetwork(PaymentOptions payments, ChannelOnChain onChain, long workerFeePerToken, ChannelJournal channels) {
        this(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, START_BALANCE, payments, new InMemoryAccountBook(Clock.systemUTC()),
                Runnable::run, channels, onChain, workerFeePerToken, null, BODY_LIMIT, ConnectionOptions.DEFAULTS,
                ShutdownOptions.DEFAULTS);
    }

    TestNetwork(KeyLimits limits, RelayOptions relay, long balance, AccountBook accounts, Executor ledger) {
        this(limits, relay, balance, PaymentOptions.DEFAULTS, accounts, ledger, new InMemoryChannelJournal(), null, 1, null, BODY_LIMIT,
                ConnectionOptions.DEFAULTS, ShutdownOptions.DEFAULTS);
    }

    TestNetwork(KeyLimits limits, RelayOptions relay, long balance, PaymentOptions payments, AccountBook accounts,
                Executor ledger, ChannelJournal channels) {
        this(limits, relay, balance, payments, accounts, ledger, channels, null, 1, null, BODY_LIMIT,
                ConnectionOptions.DEFAULTS, ShutdownOptions.DEFAULTS);
    }

    /**
     * @param ledger            runs the book's calls: a pool of its own for a database-backed book
     * @param channels          the gateway's payment key and channel states
     * @param onChain           opens each worker's channel on chain; null keeps channels off chain
     * @param workerFeePerToken what a worker earns a token (clients pay twice that): large enough
     *                          on chain for a few requests to be worth a close
     * @param attestation       null: workers register in plaintext on the client port
     * @param maxBodyBytes      the gateway's body limit
     * @param connections       the gateway's header and idle timeouts
     * @param shutdown          how a stopping gateway drains and lets its streams finish
     */
    private TestNetwork(KeyLimits limits, RelayOptions relay, long balance, PaymentOptions payments, AccountBook accounts,
                        Executor ledger, ChannelJournal channels, ChannelOnChain onChain, long workerFeePerToken,
                        GatewayAttestation attestation, long maxBodyBytes, ConnectionOptions connections, ShutdownOptions shutdown) {
        this(limits, relay, balance, payments, accounts, ledger, channels, onChain, workerFeePerToken, attestation, maxBodyBytes,
                connections, shutdown, null);
    }

    /** @param gatewayCheck verifies an RA-TLS client port's certificate; null for a plaintext one */
    private TestNetwork(KeyLimits limits, RelayOptions relay, long balance, PaymentOptions payments, AccountBook accounts,
                        Executor ledger, ChannelJournal channels, ChannelOnChain onChain, long workerFeePerToken,
                        GatewayAttestation attestation, long maxBodyBytes, ConnectionOptions connections, ShutdownOptions shutdown,
                        RaTlsVerifier gatewayCheck) {
        this.accounts = accounts;
        this.billing = new TonRequestBilling(accounts, ledger,
                model -> PriceSchedule.of(model, 2 * workerFeePerToken, workerFeePerToken), DEPOSIT_ADDRESS);
        accounts.open(ACCOUNT);
        if (balance > 0) {
            accounts.credit(ACCOUNT, balance, "test-grant");
        }
        // Heartbeats every second: a worker is skipped after three silent intervals, and a cold JVM's
        // first request can hold the gateway's event loop (and the heartbeats queued on it) for 300 ms.
        gateway = new GatewayNode(new GatewayOptions("127.0.0.1", 0,
                Map.of(BearerKeys.hash(API_KEY), new ApiKey("test-key", ACCOUNT, limits)),
                BearerKeys.hash(ADMIN_KEY), 1_000, maxBodyBytes, relay, payments, 2, connections, shutdown, false, null),
                billing, channels, onChain, attestation);
        gatewayDeployment = await(vertx.deployVerticle(gateway));
        // A pool far above Vert.x's default of 5: a test that leaves streams open must not make a
        // later request wait for a free connection, which looks exactly like no answer.
        clientPort = gatewayCheck == null ? gateway.port()
                : await(new RaTlsClientProxy(vertx, gatewayCheck, SocketAddress.inetSocketAddress(gateway.port(), "127.0.0.1"))
                        .listen("127.0.0.1", 0));
        http = vertx.createHttpClient(new HttpClientOptions().setDefaultHost("127.0.0.1").setDefaultPort(clientPort)
                .setKeepAlive(false), new PoolOptions().setHttp1MaxSize(256));
    }

    /** Starts a worker and returns once the gateway has accepted it. */
    WorkerNode addWorker(double tokensPerSecond, int maxBatch, SchedulerOptions scheduler) {
        return addWorker(new SyntheticEngine(tokensPerSecond, maxBatch, 4096), scheduler, 2_000);
    }

    /** @param graceMs how long its running sequences may finish when it stops; 0 fails them at once */
    WorkerNode addWorker(Engine engine, SchedulerOptions scheduler, long graceMs) {
        return addWorker(engine, scheduler, graceMs, WorkerPaymentOptions.IN_MEMORY);
    }

    /** @param payments the worker's credit window and payment timeout */
    WorkerNode addWorker(Engine engine, SchedulerOptions scheduler, long graceMs, WorkerPaymentOptions payments) {
        return addWorker(engine, scheduler, graceMs, payments, null);
    }

    /** @param chain checks and settles the worker's channels on chain; null takes them off chain */
    WorkerNode addWorker(Engine engine, SchedulerOptions scheduler, long graceMs, WorkerPaymentOptions payments,
                         OnChainSettlement chain) {
        Vertx v = Vertx.vertx();
        return deployed(v, new WorkerNode(new WorkerPayments(payments, chain), engine, workerOptions(scheduler, graceMs, payments)));
    }

    /**
     * Starts a worker over the generator {@code generator} makes on the worker's Vert.x (e.g. a
     * forwarder), metering with the worker's own payments, whose channels are kept in memory.
     */
    WorkerNode addWorker(BiFunction<Vertx, CreditGate, Generator> generator, WorkerPaymentOptions payments) {
        Vertx v = Vertx.vertx();
        WorkerPayments credit = new WorkerPayments(payments, null);
        return deployed(v, new WorkerNode(generator.apply(v, credit), workerOptions(SchedulerOptions.DEFAULTS, 2_000, payments),
                credit, null));
    }

    private WorkerOptions workerOptions(SchedulerOptions scheduler, long graceMs, WorkerPaymentOptions payments) {
        return new WorkerOptions("worker-" + (workers.size() + 1), "127.0.0.1", 0, API_KEY,
                SocketAddress.inetSocketAddress(gateway.port(), "127.0.0.1"), scheduler, graceMs, payments);
    }

    /** Returns once the gateway has accepted the worker. */
    private WorkerNode deployed(Vertx v, WorkerNode node) {
        await(v.deployVerticle(node).compose(id -> node.registered()));
        workerVertx.add(v);
        workers.add(node);
        return node;
    }

    /**
     * Deploys an attested worker (synthetic engine, 100 tokens/s) against the gateway's worker
     * port; the future completes once the gateway accepted it, which for a refused one is never.
     */
    Future<String> deployWorker(String id, WorkerTls tls) {
        Vertx v = Vertx.vertx();
        WorkerNode node = new WorkerNode(new SyntheticEngine(100, 16, 4096),
                new WorkerOptions(id, "127.0.0.1", 0, API_KEY, SocketAddress.inetSocketAddress(gateway.workerPort(), "127.0.0.1"),
                        SchedulerOptions.DEFAULTS, 2_000), tls);
        workerVertx.add(v);
        workers.add(node);
        return v.deployVerticle(node).compose(deployment -> node.registered().map(deployment));
    }

    /**
     * Deploys a worker without attestation (synthetic engine, 100 tokens/s) that dials
     * {@code gatewayPort}; the future completes once the gateway accepted it, which for a
     * refused one is never.
     */
    Future<String> deployWorker(String id, WorkerPaymentOptions payments, int gatewayPort) {
        return deployWorker(id, payments, null, gatewayPort);
    }

    /** @param chain checks and settles the worker's channels on chain; null takes them off chain */
    Future<String> deployWorker(String id, WorkerPaymentOptions payments, OnChainSettlement chain, int gatewayPort) {
        Vertx v = Vertx.vertx();
        WorkerNode node = new WorkerNode(new WorkerPayments(payments, chain), new SyntheticEngine(100, 16, 4096),
                new WorkerOptions(id, "127.0.0.1", 0, API_KEY, SocketAddress.inetSocketAddress(gatewayPort, "127.0.0.1"),
                        SchedulerOptions.DEFAULTS, 2_000, payments));
        workerVertx.add(v);
        workers.add(node);
        return v.deployVerticle(node).compose(deployment -> node.registered().map(deployment));
    }

    WorkerNode addWorker(double tokensPerSecond) {
        return addWorker(tokensPerSecond, 16, SchedulerOptions.DEFAULTS);
    }

    /** Undeploys the gateway (and its fronts and payment verticle), letting running streams finish. */
    Future<Void> stopGateway() {
        return vertx.undeploy(gatewayDeployment);
    }

    /** Stops worker {@code index} (its Vert.x instance and everything in it). */
    void stopWorker(int index) {
        await(workerVertx.get(index).close());
    }

    /**
     * Blocks every event loop of worker {@code index}, as a stopped process (SIGSTOP) or a hung VM
     * looks to its peers: its connections stay up, and nothing answers on them. Thawed by
     * {@link #close}, or before.
     */
    Runnable freezeWorker(int index) {
        CountDownLatch thaw = new CountDownLatch(1);
        thaws.add(thaw);
        for (EventExecutor loop : ((VertxInternal) workerVertx.get(index)).nettyEventLoopGroup()) {
            loop.execute(() -> {
                try {
                    thaw.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }
        return thaw::countDown;
    }

    /** A request to the gateway; the response body is not read yet. */
    HttpClientResponse send(HttpMethod method, String path, String key, String body) {
        RequestOptions options = new RequestOptions().setMethod(method).setURI(path);
        if (key != null) {
            options.putHeader("Authorization", "Bearer " + key);
        }
        if (body != null) {
            options.putHeader("Content-Type", "application/json");
        }
        return await(onClientContext(() -> sent(options, body)
                .map(HttpClientResponse::pause)));
    }

    /** Sent, with the response still unread: for its status only (read bodies with {@link #reply} or {@link #send}). */
    Future<HttpClientResponse> request(RequestOptions options, String body) {
        return onClientContext(() -> sent(options, body));
    }

    /** Sent, and handed back before any answer, so that a test can leave first (close its connection). */
    HttpClientRequest unanswered(RequestOptions options, String body) {
        return await(onClientContext(() -> http.request(options).map(request -> {
            request.send(body);
            return request;
        })));
    }

    /** Call on the client context only (see {@link #onClientContext}). */
    private Future<HttpClientResponse> sent(RequestOptions options, String body) {
        return http.request(options).compose(r -> body == null ? r.send() : r.send(body));
    }

    /**
     * Runs a client call chain on an event loop, never on the test thread. Chains started from the
     * test thread left, about once in 150 fresh gateways, a GET unanswered forever: the gateway had
     * answered and closed the connection (TIME-WAIT on its side, `ss`), yet the client's future
     * never completed, most likely a response handler set from the test thread racing the event
     * loop that delivered the body. Started on a client context: none in 600 (a loop of fresh
     * gateways, each sent three GETs; the same loop from the test thread missed 4 times).
     */
    <T> Future<T> onClientContext(java.util.function.Supplier<Future<T>> chain) {
        Promise<T> result = Promise.promise();
        clientContext.runOnContext(v -> {
            Future<T> started;
            try {
                started = chain.get();
            } catch (RuntimeException e) {
                result.fail(e);  // not left unanswered: an await would wait out its 20 s for nothing
                return;
            }
            started.onComplete(result);
        });
        return result.future();
    }

    static RequestOptions post(String path, String key) {
        return new RequestOptions().setMethod(HttpMethod.POST).setURI(path)
                .putHeader("Authorization", "Bearer " + key).putHeader("Content-Type", "application/json");
    }

    /** The whole response: status and body. */
    Reply call(HttpMethod method, String path, String key, String body) {
        RequestOptions options = new RequestOptions().setMethod(method).setURI(path);
        if (key != null) {
            options.putHeader("Authorization", "Bearer " + key);
        }
        return await(reply(options, body));
    }

    /** A GET without a key, or null if no answer came within {@code timeoutMs}. */
    Reply tryCall(HttpMethod method, String path, long timeoutMs) {
        try {
            return reply(new RequestOptions().setMethod(method).setURI(path), null)
                    .toCompletionStage().toCompletableFuture().get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            return null;
        }
    }

    /** The whole response, read on the client context. */
    Future<Reply> reply(RequestOptions options, String body) {
        return onClientContext(() -> sent(options, body)
                .compose(response -> response.body().map(buffer -> new Reply(response.statusCode(), buffer.toString(), response))));
    }

    record Reply(int status, String body, HttpClientResponse response) {
        JsonObject json() {
            return new JsonObject(body);
        }
    }

    /** The worker's own {@code /status} as JSON. */
    JsonObject workerStatus(WorkerNode worker) {
        return workerJson(worker, "/status");
    }

    /** A GET of the worker's own HTTP API ({@code /status}, {@code /earnings}) as JSON. */
    JsonObject workerJson(WorkerNode worker, String path) {
        return workerGet(worker, path).toJsonObject();
    }

    /** A worker's own page, as its operator reads it (its API key). */
    Buffer workerGet(WorkerNode worker, String path) {
        int port = portOf(worker);  // here: a worker not yet listening throws on the test thread, where callers catch it
        HttpClient direct = vertx.createHttpClient();
        try {
            return await(onClientContext(() -> direct.request(HttpMethod.GET, port, "127.0.0.1", path)
                    .compose(r -> r.putHeader("Authorization", "Bearer " + API_KEY).send().compose(HttpClientResponse::body))));
        } finally {
            direct.close();
        }
    }

    static int portOf(WorkerNode worker) {
        String endpoint = worker.endpoint();
        return Integer.parseInt(endpoint.substring(endpoint.lastIndexOf(':') + 1));
    }

    static String chat(String model, boolean stream, String extra) {
        return "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"tell me about cocoon\"}],"
                + "\"stream\":" + stream + (extra.isEmpty() ? "" : "," + extra) + "}";
    }

    static void eventually(String what, BooleanSupplier condition) {
        eventually(what, 5_000, condition);
    }

    static void eventually(String what, long timeoutMs, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("future failed", e);
        }
    }

    @Override
    public void close() {
        thaws.forEach(CountDownLatch::countDown);
        for (Vertx v : workerVertx) {
            await(v.close());
        }
        await(vertx.close());
    }
}
