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
import java.util.Optional;
import java.util.concurrent.Callable;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.tee.DevTee;
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
    /** What a channel's contract takes from the gateway wallet beyond its deposit: gas, storage, forwarding. */
    private static final long CHANNEL_FEES_NANOTON = 1_000_000_000L;
    static final Policy DEV_POLICY = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);

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
        String host = "127.0.0.1";

        Clock clock = Clock.systemUTC();
        byte[] devSeed = new byte[32];
        new SecureRandom().nextBytes(devSeed);
        // Plain HTTP for clients: the demo is one machine's loopback, and any OpenAI SDK reaches it as is.
        GatewayAttestation attestation = new GatewayAttestation(
                RaTlsNode.dev(DevTee.fromSeed(devSeed, clock), DEV_POLICY, clock), 0, clock, GatewayAttestation.ClientPort.PLAINTEXT);

        Optional<DemoChain> chain = DemoChain.startIfAvailable(
                chainEmulator != null ? chainEmulator : DemoChain.defaultEmulatorDir());
        if (chain.isPresent()) {
            policy.depositAddress = chain.get().gatewayWallet().toNonBounceable();
        } else if (policy.grantNanoton == 0) {
            policy.grantNanoton = DEMO_GRANT_NANOTON;
        }
        GatewayOptions gatewayOptions = policy.options(host, port, List.of(key), admin, false, null);  // attested: workers prove themselves
        ChannelOnChain onChain = null;
        if (chain.isPresent()) {
            try {
                // Each worker's channel takes the deposit cap, plus the contract's fees; twice, as a
                // worker's next channel is opened before the one it replaces closes.
                onChain = chain.get().channels(2 * workers * (gatewayOptions.payments().depositCapNanoton()
                        + CHANNEL_FEES_NANOTON));
            } catch (RuntimeException e) {
                chain.get().close();
                throw e;
            }
        }
        Vertx vertx = network.vertx();
        // The demo's money lives as long as the demo, unless --ledger says otherwise.
        GatewayPolicy.Billing billing;
        // As for `cocoon gateway`: a --ledger shared with a running gateway is leased only by a demo that can serve.
        try (Ports ports = Ports.hold(host, port)) {
            billing = policy.billing(gatewayOptions, "jdbc:h2:mem:cocoon-demo;DB_CLOSE_DELAY=-1", PendingJournal.inMemory());
        } catch (RuntimeException e) {
            if (chain.isPresent()) {
                chain.get().close();
            }
            throw e;
        }
        GatewayNode gateway = new GatewayNode(gatewayOptions, billing.billing(), billing.channels(), onChain, attestation);
        AutoCloseable afterwards = () -> {
            if (chain.isPresent()) {
                chain.get().close();  // its deposit watcher first: it credits into the ledger
            }
            billing.ledger().close();
        };
        List<WorkerNode> nodes = new ArrayList<>();
        try {
            Running.await(vertx.deployVerticle(gateway), "the gateway");
            SocketAddress gatewayAddress = SocketAddress.inetSocketAddress(gateway.workerPort(), host);
            List<Future<String>> deployed = new ArrayList<>();
            for (int i = 0; i < workers; i++) {
                Optional<DemoChain.WorkerSide> side = chain.map(DemoChain::worker);
                WorkerPaymentOptions payments = side.map(w -> new WorkerPaymentOptions(null, w.payoutAddress(),
                        WorkerPaymentOptions.IN_MEMORY.creditWindowNanoton(), WorkerPaymentOptions.IN_MEMORY.paymentTimeoutMs()))
                        .orElse(WorkerPaymentOptions.IN_MEMORY);
                WorkerPayments paid = new WorkerPayments(payments, side.map(DemoChain.WorkerSide::settlement).orElse(null));
                WorkerNode node = new WorkerNode(engine.create(vertx, SchedulerOptions.DEFAULTS, paid),
                        // Stopped together with the gateway: as much grace, so a stream it lets finish
                        // is not cut by its worker first.
                        new WorkerOptions("worker-" + (i + 1), host, 0, key, gatewayAddress, SchedulerOptions.DEFAULTS,
                                gatewayOptions.shutdown().graceMs(), payments),
                        paid,
                        new WorkerTls(RaTlsNode.dev(DevTee.fromSeed(devSeed, clock), DEV_POLICY, clock)));
                nodes.add(node);
                deployed.add(vertx.deployVerticle(node).compose(id -> node.registered().map(id)));
            }
            // Clients are told to go at the ready line: every worker must be routed to by then.
            Running.await(Future.all(deployed), "the workers", () -> nodes.stream().map(WorkerNode::gatewayStatus)
                    .filter(g -> g.containsKey("message")).map(g -> g.getString("message")).findFirst().orElse(null));
            if (chain.isPresent()) {
                chain.get().watch(billing, gateway.meters());
                chain.get().fund(billing.accounts(), gatewayOptions.apiKeys().values().iterator().next().accountId(),
                        DEMO_GRANT_NANOTON);
            }
        } catch (Exception e) {
            vertx.close();
            afterwards.close();
            throw e;
        }

        JsonArray workerUrls = new JsonArray();
        nodes.forEach(n -> workerUrls.add(n.endpoint()));
        System.out.println(new JsonObject()
                .put("event", "ready")
                .put("gateway", "http://" + host + ":" + gateway.port())
                .put("api_key", key)
                .put("admin_key", admin)
                .put("workers", workerUrls)
                .put("model", nodes.getFirst().model().name())
                .put("funding", chain.isPresent() ? "chain" : "grant")
                .put("attestation", attestation.tee())
                .encode());
        System.out.flush();
        Running.untilSignalled(vertx, gatewayOptions.shutdown().totalMs(), afterwards);
        return 0;
    }
}
