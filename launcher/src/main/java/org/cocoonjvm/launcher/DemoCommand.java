package org.cocoonjvm.launcher;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.ArrayList;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.ratls.NodeConfig;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.attest.tee.QuoteSourceException;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PendingJournal;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.cocoonjvm.worker.serve.WorkerTls;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code cocoon demo}: a gateway and N workers on loopback in one process, each node on its own
 * port and talking to the others only over gRPC and HTTP, as separate machines would. Attestation
 * is the development TEE end to end: every node has its own dev quote under one random dev root,
 * and gateway and workers verify each other over mutual RA-TLS with {@link #DEV_POLICY}.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Start a gateway and workers on loopback; print one JSON line when ready.")
final class DemoCommand implements Callable<Integer> {
    /** The demo key's account starts with 1000 TON: paid in on the local chain, or else granted. */
    static final long DEMO_GRANT_NANOTON = 1_000_000_000_000L;
    /** The demo's peer policy on both sides: the dev TEE explicitly allowed, measurements and models unchecked. */
    static final Policy DEV_POLICY = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);
    /** What a channel's contract takes from the gateway wallet beyond its deposit: gas, storage, forwarding. */
    private static final long CHANNEL_FEES_NANOTON = 1_000_000_000L;
    private static final String HOST = "127.0.0.1";

    @Option(names = "--port", defaultValue = "8080", description = "Gateway port (0 picks a free one). Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--api-key", description = "Client API key. Default: a generated one.")
    String apiKey;

    @Option(names = "--admin-key", description = "Key for /admin. Default: a generated one.")
    String adminKey;

    @Option(names = "--workers", defaultValue = "1", description = "Number of workers. Default: ${DEFAULT-VALUE}.")
    int workers;

    @Option(names = "--chain-emulator", paramLabel = "DIR",
            description = "The local TON chain (ton-billing/chain-emulator, with its npm packages) that funds the demo account "
                    + "by a real deposit; without Node.js or the packages the account gets a start grant. "
                    + "Default: the one in the checkout the launcher runs from.")
    Path chainEmulator;

    @Mixin
    EngineChoice engine;

    @Mixin
    GatewayPolicy policy;

    @Mixin
    TransportChoice network;

    @Override
    public Integer call() throws Exception {
        Cocoon.UsageException.checkRange("--workers", workers, 1, 64);
        Ports.checkRange("--port", port);
        engine.validate();
        String key = apiKey != null ? apiKey : Keys.generate("sk-cocoon-");
        String admin = adminKey != null ? adminKey : Keys.generate("cocoon-admin-");
        GatewayOptions options = policy.options(HOST, port, List.of(key), admin, false, null);  // attested: workers prove themselves
        DevRoot dev = DevRoot.random(Clock.systemUTC());
        // Plain HTTP for clients: the demo is one machine's loopback, and any OpenAI SDK reaches it as is.
        GatewayAttestation attestation = new GatewayAttestation(dev.node(NodeConfig.of(Map.of("role", "gateway"))), 0, dev.clock(), GatewayAttestation.ClientPort.PLAINTEXT);
        Optional<DemoChain> chain = DemoChain.startIfAvailable(
                chainEmulator != null ? chainEmulator : DemoChain.defaultEmulatorDir());
        Vertx vertx = network.vertx();
        DemoGateway gateway = startGateway(chain, options, attestation);
        List<WorkerNode> nodes;
        try {
            Running.await(vertx.deployVerticle(gateway.node()), "the gateway");
            nodes = startWorkers(vertx, gateway, key, dev);
            if (chain.isPresent()) {
                chain.get().watch(gateway.billing(), gateway.node().meters());
                chain.get().fund(gateway.billing().accounts(), options.apiKeys().values().iterator().next().accountId(),
                        DEMO_GRANT_NANOTON);
            }
        } catch (Exception e) {
            vertx.close();
            gateway.close();
            throw e;
        }
        printReady(gateway, key, admin, nodes);
        Running.untilSignalled(vertx, options.shutdown().totalMs(), gateway);
        return 0;
    }

    /** One random dev root for the whole demo, under which every node gets its own dev quote. */
    private record DevRoot(byte[] seed, Clock clock) {
        static DevRoot random(Clock clock) {
            byte[] seed = new byte[32];
            new SecureRandom().nextBytes(seed);
            return new DevRoot(seed, clock);
        }

        RaTlsNode node(NodeConfig config) throws QuoteSourceException {
            return RaTlsNode.dev(DevTee.fromSeed(seed, clock), DEV_POLICY, clock, null, config);
        }
    }

    /**
     * A gateway built but not yet deployed, and what it holds that outlives it: {@link #close} once it
     * has stopped, or instead of deploying it.
     */
    private record DemoGateway(GatewayOptions options, GatewayNode node, GatewayLedger.Billing billing,
                               Optional<DemoChain> chain, GatewayAttestation attestation) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            if (chain.isPresent()) {
                chain.get().close();  // its deposit watcher first: it credits into the ledger
            }
            billing.ledger().close();
        }
    }

    /** Opens the gateway's channels on the local chain, if there is one, and its ledger; the chain is closed if either fails. */
    private DemoGateway startGateway(Optional<DemoChain> chain, GatewayOptions options, GatewayAttestation attestation)
            throws Exception {
        try {
            // Each worker's channel takes the deposit cap, plus the contract's fees; twice, as a
            // worker's next channel is opened before the one it replaces closes.
            ChannelOnChain onChain = chain.map(c -> c.channels(2 * workers * (options.payments().depositCapNanoton()
                    + CHANNEL_FEES_NANOTON))).orElse(null);
            GatewayLedger.Billing billing;
            // As for `cocoon gateway`: a --ledger shared with a running gateway is leased only by a demo that can serve.
            try (Ports ports = Ports.hold(HOST, port)) {
                // The demo's money lives as long as the demo, unless --ledger says otherwise.
                billing = policy.billing(ports, options, funding(chain), "jdbc:h2:mem:cocoon-demo;DB_CLOSE_DELAY=-1",
                        PendingJournal.inMemory(), null);
            }
            GatewayNode node = new GatewayNode(options, billing.billing(), billing.channels(), onChain, attestation);
            billing.fence().beforeExit(node::fenced);
            return new DemoGateway(options, node, billing, chain, attestation);
        } catch (RuntimeException e) {
            if (chain.isPresent()) {
                chain.get().close();
            }
            throw e;
        }
    }

    /**
     * The demo account is paid in on the local chain, through the gateway's wallet there; without a
     * chain it gets a start grant, unless {@code --grant-nanoton} names one.
     */
    private GatewayPolicy.Funding funding(Optional<DemoChain> chain) {
        if (chain.isPresent()) {
            return new GatewayPolicy.Funding(chain.get().gatewayWallet().toNonBounceable(), policy.grantNanoton);
        }
        return new GatewayPolicy.Funding(policy.depositAddress, policy.grantNanoton == 0 ? DEMO_GRANT_NANOTON : policy.grantNanoton);
    }

    /** Deploys the workers and returns once each is registered: clients are told to go at the ready line. */
    private List<WorkerNode> startWorkers(Vertx vertx, DemoGateway gateway, String key, DevRoot dev) throws Exception {
        SocketAddress gatewayAddress = SocketAddress.inetSocketAddress(gateway.node().workerPort(), HOST);
        // Stopped together with the gateway: as much grace, so a stream it lets finish is not cut by its worker first.
        long graceMs = gateway.options().shutdown().graceMs();
        List<WorkerNode> nodes = new ArrayList<>();
        List<Future<String>> deployed = new ArrayList<>();
        for (int i = 0; i < workers; i++) {
            Optional<DemoChain.WorkerSide> side = gateway.chain().map(DemoChain::worker);
            WorkerPaymentOptions payments = side.map(w -> new WorkerPaymentOptions(null, w.payoutAddress(),
                    WorkerPaymentOptions.IN_MEMORY.creditWindowNanoton(), WorkerPaymentOptions.IN_MEMORY.paymentTimeoutMs()))
                    .orElse(WorkerPaymentOptions.IN_MEMORY);
            WorkerPayments paid = new WorkerPayments(payments, side.map(DemoChain.WorkerSide::settlement).orElse(null));
            WorkerNode node = new WorkerNode(engine.create(vertx, SchedulerOptions.DEFAULTS, paid),
                    new WorkerOptions("worker-" + (i + 1), HOST, 0, key, gatewayAddress, SchedulerOptions.DEFAULTS, graceMs, payments),
                    paid, new WorkerTls(dev.node(engine.claims())));
            nodes.add(node);
            deployed.add(vertx.deployVerticle(node).compose(id -> node.registered().map(id)));
        }
        Running.await(Future.all(deployed), "the workers", () -> nodes.stream().map(WorkerNode::gatewayStatus)
                .filter(g -> g.containsKey("message")).map(g -> g.getString("message")).findFirst().orElse(null));
        return nodes;
    }

    private static void printReady(DemoGateway gateway, String key, String admin, List<WorkerNode> nodes) {
        JsonArray workerUrls = new JsonArray();
        nodes.forEach(n -> workerUrls.add(n.endpoint()));
        System.out.println(new JsonObject()
                .put("event", "ready")
                .put("gateway", "http://" + HOST + ":" + gateway.node().port())
                .put("api_key", key)
                .put("admin_key", admin)
                .put("workers", workerUrls)
                .put("model", nodes.getFirst().model().name())
                .put("funding", gateway.chain().isPresent() ? "chain" : "grant")
                .put("attestation", gateway.attestation().tee())
                .encode());
        System.out.flush();
    }
}
