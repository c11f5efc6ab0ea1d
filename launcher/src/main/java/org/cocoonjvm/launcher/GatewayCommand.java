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
        GatewayOptions options = policy.options(host, port, apiKeys, adminKey);
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
        Running.untilSignalled(vertx, options.shutdown().totalMs(), () -> {
            watcher.close();
            billing.ledger().close();
        });
        return 0;
    }
}
