package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.GatewayOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code cocoon gateway}: run a gateway alone; workers register with it over gRPC. */
@Command(name = "gateway", mixinStandardHelpOptions = true, description = "Run a gateway.")
final class GatewayCommand implements Callable<Integer> {
    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Interface to bind. Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "HTTP and gRPC port. Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--api-key", required = true, description = "A client API key (repeatable).")
    List<String> apiKeys;

    @Option(names = "--admin-key", required = true, description = "Key for /admin.")
    String adminKey;

    @Option(names = "--data-dir", defaultValue = "cocoon-data",
            description = "Where the gateway keeps its state (the default ledger, an H2 file). Default: ${DEFAULT-VALUE}.")
    Path dataDir;

    @Mixin
    GatewayPolicy policy;

    @Override
    public Integer call() throws Exception {
        Vertx vertx = Vertx.vertx();
        GatewayOptions options = policy.options(host, port, apiKeys, adminKey);
        GatewayPolicy.Billing billing = policy.billing(options,
                "jdbc:h2:file:" + dataDir.toAbsolutePath().resolve("ledger"));
        GatewayNode node = new GatewayNode(options, billing.billing(), billing.channels());
        vertx.deployVerticle(node).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        Running.untilSignalled(vertx, billing.ledger());
        return 0;
    }
}
