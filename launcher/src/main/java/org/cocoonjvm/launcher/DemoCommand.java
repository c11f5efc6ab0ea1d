package org.cocoonjvm.launcher;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code cocoon demo}: a gateway and N workers on loopback in one process, each node on its own
 * port and talking to the others only over gRPC and HTTP, as separate machines would.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Start a gateway and workers on loopback; print one JSON line when ready.")
final class DemoCommand implements Callable<Integer> {
    /** The demo key's account starts with 1000 TON, until the local chain funds it by deposit. */
    static final long DEMO_GRANT_NANOTON = 1_000_000_000_000L;

    @Option(names = "--port", defaultValue = "8080", description = "Gateway port (0 picks a free one). Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--api-key", description = "Client API key. Default: a generated one.")
    String apiKey;

    @Option(names = "--admin-key", description = "Key for /admin. Default: a generated one.")
    String adminKey;

    @Option(names = "--workers", defaultValue = "1", description = "Number of workers. Default: ${DEFAULT-VALUE}.")
    int workers;

    @Mixin
    EngineChoice engine;

    @Mixin
    GatewayPolicy policy;

    @Override
    public Integer call() throws Exception {
        if (workers < 1 || workers > 64) {
            throw new Cocoon.UsageException("--workers must be between 1 and 64, got " + workers);
        }
        engine.validate();
        String key = apiKey != null ? apiKey : Keys.generate("sk-cocoon-");
        String admin = adminKey != null ? adminKey : Keys.generate("cocoon-admin-");
        String host = "127.0.0.1";

        Vertx vertx = Vertx.vertx();
        if (policy.grantNanoton == 0) {
            policy.grantNanoton = DEMO_GRANT_NANOTON;
        }
        GatewayOptions gatewayOptions = policy.options(host, port, List.of(key), admin);
        // The demo's money lives as long as the demo, unless --ledger says otherwise.
        GatewayPolicy.Billing billing = policy.billing(gatewayOptions, "jdbc:h2:mem:cocoon-demo;DB_CLOSE_DELAY=-1");
        GatewayNode gateway = new GatewayNode(gatewayOptions, billing.billing(), billing.channels());
        List<WorkerNode> nodes = new ArrayList<>();
        try {
            await(vertx.deployVerticle(gateway));
            SocketAddress gatewayAddress = SocketAddress.inetSocketAddress(gateway.port(), host);
            List<Future<String>> deployed = new ArrayList<>();
            for (int i = 0; i < workers; i++) {
                WorkerNode node = new WorkerNode(engine.create(vertx, SchedulerOptions.DEFAULTS),
                        new WorkerOptions("worker-" + (i + 1), host, 0, key, gatewayAddress, SchedulerOptions.DEFAULTS, 5_000));
                nodes.add(node);
                deployed.add(vertx.deployVerticle(node));
            }
            await(Future.all(deployed));
        } catch (Exception e) {
            vertx.close();
            billing.ledger().close();
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
                .encode());
        System.out.flush();
        Running.untilSignalled(vertx, billing.ledger());
        return 0;
    }

    private static <T> T await(Future<T> future) throws Exception {
        return future.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    }
}
