package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.billing.Deposits;
import org.ton.ton4j.address.Address;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
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
            description = "Where the gateway keeps its state (the default ledger, an H2 file; the wallet key). Default: ${DEFAULT-VALUE}.")
    Path dataDir;

    @Option(names = "--worker-port", defaultValue = "8081",
            description = "With attestation: the port workers register on over mutual RA-TLS. Default: ${DEFAULT-VALUE}.")
    int workerPort;

    @Option(names = "--drain-seconds", defaultValue = "0",
            description = "On SIGTERM, go on serving this long with GET /ready at 503 before the port closes, so that load "
                    + "balancers polling it move traffic away first (more than their check interval times their unhealthy "
                    + "threshold); running streams then get 6 s to finish. Default: ${DEFAULT-VALUE}.")
    long drainSeconds;

    @Mixin
    GatewayPolicy policy;

    @Mixin
    DepositOptions deposits;

    @Mixin
    AttestationChoice attestation;

    @Mixin
    TransportChoice network;

    @Override
    public Integer call() throws Exception {
        Clock clock = Clock.systemUTC();
        GatewayAttestation attested = attestation.node("cocoon-gateway", clock)
                .map(n -> new GatewayAttestation(n, workerPort, clock)).orElse(null);
        Vertx vertx = network.vertx();
        if (drainSeconds < 0 || TimeUnit.SECONDS.toMillis(drainSeconds) > GatewayOptions.MAX_DRAIN_MS) {
            throw new Cocoon.UsageException("--drain-seconds must be between 0 and "
                    + TimeUnit.MILLISECONDS.toSeconds(GatewayOptions.MAX_DRAIN_MS) + ", got " + drainSeconds);
        }
        GatewayOptions options = policy.options(host, port, apiKeys, adminKey, TimeUnit.SECONDS.toMillis(drainSeconds));
        Deposits.Options depositOptions = deposits.options();
        Address wallet = deposits.walletAddress(dataDir);
        if (policy.depositAddress == null) {
            policy.depositAddress = wallet.toNonBounceable();  // a wallet maybe not deployed yet: bounceable transfers would bounce
        }
        Address depositAddress = DepositOptions.parse(policy.depositAddress);
        GatewayPolicy.Billing billing = policy.billing(options,
                "jdbc:h2:file:" + dataDir.toAbsolutePath().resolve("ledger"));
        GatewayNode node = new GatewayNode(options, billing.billing(), billing.channels(),
                deposits.channels(dataDir), attested);
        vertx.deployVerticle(node).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        AutoCloseable watcher = deposits.start(depositAddress, depositOptions, billing, node.meters());
        Running.untilSignalled(vertx, options.drainMs(), () -> {
            watcher.close();
            billing.ledger().close();
        });
        return 0;
    }
}
