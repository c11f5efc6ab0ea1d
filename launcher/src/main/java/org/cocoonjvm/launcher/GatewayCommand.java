package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.cocoonjvm.attest.ratls.NodeConfig;
import org.cocoonjvm.gateway.GatewayNode;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.gateway.billing.Deposits;
import org.cocoonjvm.gateway.billing.PendingJournal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code cocoon gateway}: run a gateway alone; workers register with it over gRPC. */
@Command(name = "gateway", mixinStandardHelpOptions = true, description = "Run a gateway.")
final class GatewayCommand implements Callable<Integer> {
    private static final Logger log = LoggerFactory.getLogger(GatewayCommand.class);
    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Interface to bind. Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "HTTP and gRPC port. Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--api-key", description = "A client API key (repeatable). Seen by anyone who can list this "
            + "machine's processes: prefer --api-keys-file.")
    List<String> apiKeys = new ArrayList<>();

    @Option(names = "--api-keys-file", paramLabel = "FILE", description = "Client API keys, one a line (blank lines and "
            + "lines starting with # are skipped); with --api-key, both count. Each key's account is named after the "
            + "key's digest, so removing or reordering keys moves no money. A line is KEY [ACCOUNT] [rpm=N] [tpm=N] "
            + "[max-concurrent=N]: KEY may be sha256:<the key's hex digest> (cocoon key new writes such lines); ACCOUNT "
            + "names the account instead (a rotated key names its predecessor's, account-<its key id's hex>, and keeps "
            + "its balance); the limits replace --rpm, --tpm, --max-concurrent for that key. Read again when it "
            + "changes: keys are added, revoked and re-limited without a restart.")
    Path apiKeysFile;

    @Option(names = "--admin-key", description = "Key for /admin; or --admin-key-file.")
    String adminKey;

    @Option(names = "--admin-key-file", paramLabel = "FILE", description = "A file holding the key for /admin.")
    Path adminKeyFile;

    @Option(names = "--data-dir", defaultValue = "cocoon-data",
            description = "Where the gateway keeps its state (the default ledger, an H2 file; the wallet key; "
                    + "cordons.json, the workers cordoned through /admin; models.json, the models served lately, so that "
                    + "a restart answers them 503 rather than 404 until their workers are back; pending-settlements.jsonl, settlements a ledger "
                    + "outage kept from the ledger, billed by the next start). Default: ${DEFAULT-VALUE}.")
    Path dataDir;

    @Option(names = "--worker-port", defaultValue = "8081",
            description = "With attestation: the port workers register on over mutual RA-TLS. Default: ${DEFAULT-VALUE}.")
    int workerPort;

    @Option(names = "--client-plaintext",
            description = "With attestation: serve the client port as plain HTTP instead of TLS on the gateway's RA-TLS "
                    + "certificate. Prompts then cross the host and the network in clear: only for a TLS terminator inside "
                    + "the same TD. Default: RA-TLS, reached by clients through `cocoon attest proxy`.")
    boolean clientPlaintext;

    @Option(names = "--allow-unattested-remote-workers",
            description = "Without --attestation: register workers from other hosts too. Nothing then tells a worker from "
                    + "anyone who reaches the port, and a worker gets the prompts routed to it and is paid: only where "
                    + "every host that can reach the port is trusted. Default: workers on this host only.")
    boolean remoteUnattestedWorkers;

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
        Ports.checkRange("--port", port);
        Ports.checkRange("--worker-port", workerPort);
        Clock clock = Clock.systemUTC();
        GatewayAttestation attested = attestation.node("cocoon-gateway", clock, NodeConfig.of(Map.of("role", "gateway")))
                .map(n -> new GatewayAttestation(n, workerPort, clock, clientPlaintext ? GatewayAttestation.ClientPort.PLAINTEXT
                        : GatewayAttestation.ClientPort.RA_TLS)).orElse(null);
        if (remoteUnattestedWorkers && attested != null) {
            throw new Cocoon.UsageException("--allow-unattested-remote-workers is for a gateway without --attestation;"
                    + " with it, workers from any host register by proving what they run");
        }
        if (clientPlaintext && attested == null) {
            throw new Cocoon.UsageException("--client-plaintext is for a gateway with --attestation; without it the client"
                    + " port is plain HTTP already");
        }
        GatewayOptions options = policy.options(host, port, clientKeys(), adminKey(), remoteUnattestedWorkers, dataDir);
        // Before anything in it is read; held until the ledger is closed, or the process ends.
        DirLock lock = DirLock.hold(dataDir, DirLock.GATEWAY);
        try {
            return serve(options, attested, lock);
        } catch (Exception | Error e) {
            // Once the node serves, the lock goes with the process: let go before the exit, a start
            // on this data dir could take the lease while this gateway still serves (review W, W-3).
            if (!deployed) {
                lock.close();
            }
            throw e;
        }
    }

    /** The node was deployed: from then on it serves until the process ends. */
    private boolean deployed;

    private int serve(GatewayOptions options, GatewayAttestation attested, DirLock lock) throws Exception {
        Vertx vertx = network.vertx();
        if (remoteUnattestedWorkers) {
            log.warn("registering workers from any host without attestation (--allow-unattested-remote-workers): anyone who"
                    + " reaches port {} can register as a worker, receive the prompts routed to it and be paid", port);
        }
        Deposits.Options depositOptions = deposits.options();
        Address wallet = deposits.walletAddress(dataDir);
        // Clients are shown an address only where a transfer to it is credited: the wallet this
        // gateway watches, or --deposit-address, which a gateway on a shared ledger may watch. A
        // client told to pay into a wallet nobody watches sent TON that was never credited.
        // Non-bounceable: the wallet may not be deployed yet, and bounceable transfers to it would bounce.
        String depositTo = policy.depositAddress != null ? policy.depositAddress
                : deposits.watching() ? wallet.toNonBounceable() : null;
        GatewayPolicy.Funding funding = new GatewayPolicy.Funding(depositTo, policy.grantNanoton);
        Address depositAddress = depositTo == null ? null : DepositOptions.parse(depositTo);
        GatewayLedger.Billing billing;
        // Taking the ledger's lease is refused while a live process holds this --gateway-id's, and
        // fences it with --take-over: only a process that holds the ports it is to serve on may try.
        try (Ports ports = Ports.hold(host, port, attested != null ? workerPort : 0)) {
            billing = policy.billing(ports, options, funding, "jdbc:h2:file:" + dataDir.toAbsolutePath().resolve("ledger"),
                    PendingJournal.inDirectory(dataDir), lock.id());
        }
        GatewayNode node;
        try {
            try {
                node = new GatewayNode(options, billing.billing(), billing.channels(), deposits.channels(dataDir), attested);
            } catch (IllegalArgumentException e) {
                throw new Cocoon.StartFailure(e.getMessage(), e);  // a cordons or models file that does not read, say
            }
            billing.fence().beforeExit(node::fenced);
            Running.await(vertx.deployVerticle(node), "the gateway");
            deployed = true;
        } catch (Exception e) {
            // Nothing was served or kept: the lease is released, not left to hold up the next start (review U, U-5).
            closeAfter(e, billing.ledger());
            throw e;
        }
        AutoCloseable watcher = deposits.start(depositAddress, depositOptions, billing, node.meters());
        if (!deposits.watching()) {
            log.warn(funding.notWatchingDeposits(billing.accounts(), options.apiKeys().values()));
        }
        AutoCloseable keysWatcher = apiKeysFile == null ? () -> { }
                : KeysFileWatcher.start(apiKeysFile, apiKeys, options.apiKeys(), policy::clientKeys, keys -> {
                    funding.openAccounts(billing.accounts(), keys.values());
                    node.replaceApiKeys(keys);
                });
        // As demo and worker do: a script learns the gateway serves without polling /health (audit M, M-10).
        System.out.println(new JsonObject().put("event", "ready").put("gateway", node.url())
                .put("worker_port", attested != null ? node.workerPort() : null)
                .put("attestation", attested != null ? attested.tee() : "none").encode());
        System.out.flush();
        Running.untilSignalled(vertx, options.shutdown().totalMs(), null, billing::stopping, () -> {
            keysWatcher.close();
            watcher.close();
            billing.ledger().close();
            lock.close();  // last: a start that holds it takes this process's lease as gone
        });
        return 0;
    }

    private static void closeAfter(Exception failure, AutoCloseable closing) {
        try {
            closing.close();
        } catch (Exception e) {
            failure.addSuppressed(e);
        }
    }

    /** The client keys of {@code --api-key} and {@code --api-keys-file}: at least one. */
    private List<String> clientKeys() {
        List<String> keys = new ArrayList<>(apiKeys);
        if (apiKeysFile != null) {
            keys.addAll(Keys.read("--api-keys-file", apiKeysFile));
        }
        if (keys.isEmpty()) {
            throw new Cocoon.UsageException("no client keys: give --api-key or --api-keys-file (one key a line)");
        }
        return keys;
    }

    private String adminKey() {
        if ((adminKey == null) == (adminKeyFile == null)) {
            throw new Cocoon.UsageException("give one of --admin-key or --admin-key-file");
        }
        if (adminKey != null) {
            return adminKey;
        }
        List<String> keys = Keys.read("--admin-key-file", adminKeyFile);
        if (keys.size() != 1) {
            throw new Cocoon.UsageException("--admin-key-file: one key expected in " + adminKeyFile + ", found " + keys.size());
        }
        return keys.getFirst();
    }
}
