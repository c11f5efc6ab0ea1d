package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.HostAndPort;
import io.vertx.core.net.SocketAddress;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.Callable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.worker.payments.OnChainSettlement;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.cocoonjvm.worker.serve.WorkerTls;
import org.cocoonjvm.gateway.ShutdownOptions;
import org.cocoonjvm.protocol.PrintableIds;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code cocoon worker}: run a worker and register it with a gateway. */
@Command(name = "worker", mixinStandardHelpOptions = true, description = "Run a worker.",
        subcommands = WorkerEarningsCommand.class)
final class WorkerCommand implements Callable<Integer> {
    /** EX_SOFTWARE: the engine failed (a kernel error); a supervisor should start the worker again. */
    static final int EXIT_ENGINE_FAILED = 70;
    private static final Logger log = LoggerFactory.getLogger(WorkerCommand.class);

    /**
     * Required, and checked in {@link #call}: picocli would ask a parent's required options of
     * {@code cocoon worker earnings} too, which runs no worker.
     */
    @Option(names = "--id", description = "Worker id shown by the gateway: printable ASCII without "
            + "spaces, at most " + PrintableIds.MAX_WORKER_ID + " characters. Required.")
    String id;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Interface to bind and announce. Default: ${DEFAULT-VALUE}.")
    String host;

    @Option(names = "--port", defaultValue = "0", description = "gRPC and HTTP port (0 picks one). Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--advertise", paramLabel = "HOST[:PORT]", description = "The address the gateway is told to call this "
            + "worker at, in place of --host and the bound port: needed with --host 0.0.0.0, behind NAT or a port forward.")
    String advertise;

    @Option(names = "--gateway", description = "host:port of the gateway to register with (with attestation: its "
            + "--worker-port); omit to run standalone.")
    String gateway;

    @Option(names = "--api-key", description = "Bearer key for the worker's own OpenAI API; omit to leave it open.")
    String apiKey;

    @Option(names = "--shutdown-grace-seconds", defaultValue = "5",
            description = "On SIGTERM the worker takes no new requests (its gateway routes them elsewhere) and lets running "
                    + "sequences finish for this long, still paid; those still running then fail, billed for what they "
                    + "produced (0: fail them at once). Then, with --ton-api, it has each channel holding more than its "
                    + "close costs closed (it logs each one left open), and leaves its gateway. A second SIGTERM or SIGINT "
                    + "ends the grace at once. Default: ${DEFAULT-VALUE}.")
    long graceSeconds;

    @Option(names = "--payment-dir", description = "Where the worker keeps its payment key and each channel's latest "
            + "signed state (one file per channel, replaced atomically); omit to keep them in memory.")
    Path paymentDir;

    @Option(names = "--payout-address", defaultValue = "", description = "TON address the channels pay out to on close. "
            + "Default with --ton-api: the worker's wallet.")
    String payoutAddress;

    @Option(names = "--ton-api", paramLabel = "URL", description = "A toncenter v2 endpoint. With it the worker checks each "
            + "channel's contract on chain before serving on it, and closes it when owed --close-threshold-nanoton or when the "
            + "gateway is gone; without it channels stay off chain and the worker makes no network calls to TON.")
    String tonApi;

    @Option(names = "--wallet-key", paramLabel = "FILE", description = "With --ton-api: the worker wallet's Ed25519 seed "
            + "(64 hex digits), created (mode 0600) if absent; it pays for closing a channel without the gateway, and for "
            + "answering a close the gateway started with an old state. Default: wallet.key in --payment-dir.")
    Path walletKey;

    @Option(names = "--close-threshold-nanoton", defaultValue = "100000000",
            description = "With --ton-api: close a channel cooperatively once it owes this much, or its gateway's deposit "
                    + "cap less --credit-window-nanoton when that is lower. Default: ${DEFAULT-VALUE}.")
    long closeThresholdNanoton;

    @Option(names = "--credit-window-nanoton", defaultValue = "1000000",
            description = "How much a gateway may owe before its sequences pause. Keep it above a payment round's fees "
                    + "(the gateway's --payment-every-tokens, 32, times the fee per token), or every sequence waits for each "
                    + "payment; the worker warns when a channel's prices make it so. Default: ${DEFAULT-VALUE}.")
    long creditWindowNanoton;

    @Option(names = "--payment-timeout-ms", defaultValue = "10000",
            description = "How long a paused sequence waits for payment before it fails. Default: ${DEFAULT-VALUE}.")
    long paymentTimeoutMs;

    @Mixin
    EngineChoice engine;

    @Mixin
    AttestationChoice attestation;

    @Mixin
    TransportChoice network;

    @Spec
    CommandSpec spec;

    /** Options only channels on chain use: without --ton-api they would be accepted and do nothing. */
    private static final List<String> ON_CHAIN_ONLY = List.of("--payout-address", "--wallet-key", "--close-threshold-nanoton");

    @Override
    public Integer call() throws Exception {
        if (id == null) {
            throw new Cocoon.UsageException("Missing required option: '--id=<id>' (see: cocoon worker --help)");
        }
        if (id.isBlank()) {
            throw new Cocoon.UsageException("--id must not be blank");
        }
        // The gateway refuses such an id at Hello; said here, the operator need not read the worker's log for it.
        String idProblem = PrintableIds.problem(id, PrintableIds.MAX_WORKER_ID);
        if (idProblem != null) {
            throw new Cocoon.UsageException("--id " + idProblem);
        }
        Ports.checkRange("--port", port);
        engine.validate();
        SocketAddress gatewayAddress = null;
        if (gateway != null) {
            HostAndPort parsed = HostAndPort.parseAuthority(gateway, -1);
            if (parsed == null || parsed.port() <= 0) {
                throw new Cocoon.UsageException("--gateway must be host:port, got '" + gateway + "'");
            }
            gatewayAddress = SocketAddress.inetSocketAddress(parsed.port(), parsed.host());
        }
        WorkerTls tls = attestation.node("cocoon-worker", Clock.systemUTC(), engine.claims()).map(WorkerTls::new).orElse(null);
        OnChainSettlement chain = settlement();
        WorkerPaymentOptions paymentOptions =
                new WorkerPaymentOptions(paymentDir, payoutAddress, creditWindowNanoton, paymentTimeoutMs);
        // As long as a gateway's grace may be.
        Cocoon.UsageException.checkRange("--shutdown-grace-seconds", graceSeconds, 0,
                TimeUnit.MILLISECONDS.toSeconds(ShutdownOptions.MAX_GRACE_MS));
        long graceMs = TimeUnit.SECONDS.toMillis(graceSeconds);
        WorkerOptions options = workerOptions(gatewayAddress, graceMs, paymentOptions);
        startWarnings().forEach(log::warn);
        Ports.hold(host, port).close();  // a port in use is named before the model is loaded
        DirLock lock = paymentDir == null ? null : DirLock.hold(paymentDir, DirLock.WORKER);
        WorkerPayments payments;
        try {
            payments = payments(paymentOptions, chain);  // before Vert.x: a corrupt file stops nothing running
        } catch (RuntimeException e) {
            if (lock != null) {
                lock.close();
            }
            throw e;
        }
        Vertx vertx = network.vertx();
        WorkerNode node = new WorkerNode(engine.create(vertx, SchedulerOptions.DEFAULTS, payments), options, payments, tls);
        Running.await(vertx.deployVerticle(node), "the worker");
        System.out.println(new JsonObject().put("event", "ready").put("worker", node.endpoint())
                .put("attestation", tls == null ? "none" : tls.tee()).encode());
        node.failure().onSuccess(e -> engineFailed());
        Running.untilSignalled(vertx, graceMs, node::endGrace, () -> {
            if (lock != null) {
                lock.close();  // after the stop: its last channel states are written
            }
        });
        return 0;
    }

    /**
     * The payment state read from --payment-dir; a file there that is corrupt or cannot be read
     * stops the start in one line naming it, not a stack trace (audit P, P-5).
     */
    private static WorkerPayments payments(WorkerPaymentOptions options, OnChainSettlement chain) throws IOException {
        try {
            return new WorkerPayments(options, chain);
        } catch (IllegalStateException unusable) {
            throw new Cocoon.StartFailure(unusable.getMessage(), unusable);
        } catch (UncheckedIOException unreadable) {
            throw WorkerEarningsCommand.oneLine(unreadable);
        }
    }

    /**
     * The engine failed for good (logged by the scheduler) and the worker has left its gateway: exit
     * (shutdown hooks close as for SIGTERM) so a supervisor starts a fresh one. On its own thread:
     * the hooks close the Vert.x this is called on.
     */
    private static void engineFailed() {
        Thread.ofPlatform().name("engine-failed").start(() -> System.exit(EXIT_ENGINE_FAILED));
    }

    /** What the options leave exposed or at risk, each said once at start with the option that fixes it. */
    List<String> startWarnings() {
        List<String> warnings = new ArrayList<>(engine.startWarnings());
        if (apiKey == null && !WorkerOptions.isLoopback(host)) {
            warnings.add("--host " + host + " without --api-key: anyone who can reach this worker's port may use its "
                    + "OpenAI API (/v1/*), unmetered and unpaid, and read its /status; give --api-key KEY to close it");
        }
        if (gateway != null && paymentDir == null) {
            // Said before the gateway answers: whether it pays (not with --no-payments) is not known yet.
            warnings.add("no --payment-dir: the payment key and what a paying gateway owes on each channel are kept in memory "
                    + "only, so a restart loses the unpaid earnings; give --payment-dir DIR to keep them");
        }
        return warnings;
    }

    /** The options, a contradiction among them (a wildcard host and no --advertise) said as a usage error. */
    private WorkerOptions workerOptions(SocketAddress gatewayAddress, long graceMs, WorkerPaymentOptions paymentOptions) {
        try {
            return new WorkerOptions(id, host, port, apiKey, gatewayAddress, SchedulerOptions.DEFAULTS, graceMs, paymentOptions,
                    advertise);
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException(e.getMessage());
        }
    }

    /**
     * The channels' checks and closes on chain; null (off chain) without {@code --ton-api}. Fills
     * in the payout address. Options are checked before the chain is asked anything, and a chain
     * API that can't answer stops the start: the worker would refuse every channel offered.
     */
    private OnChainSettlement settlement() {
        if (tonApi == null) {
            // Off chain nothing is paid out: accepted, these options (the payout address among them) would do nothing and
            // say so nowhere (audit M, M-7).
            List<String> unused = ON_CHAIN_ONLY.stream().filter(spec.commandLine().getParseResult()::hasMatchedOption).toList();
            if (!unused.isEmpty()) {
                throw new Cocoon.UsageException("without --ton-api channels stay off chain and pay out nowhere, so "
                        + String.join(", ", unused) + " would do nothing: give --ton-api URL or drop "
                        + (unused.size() == 1 ? "it" : "them"));
            }
            return null;
        }
        if (!payoutAddress.isEmpty()) {
            try {
                TonAddresses.parse(payoutAddress);
            } catch (IllegalArgumentException e) {
                throw new Cocoon.UsageException("--payout-address: '" + payoutAddress + "' is not a TON address ("
                        + e.getMessage() + ")");
            }
        }
        if (walletKey == null && paymentDir == null) {
            throw new Cocoon.UsageException("--ton-api needs --wallet-key or --payment-dir (where wallet.key is kept)");
        }
        Path keyFile = walletKey != null ? walletKey : paymentDir.resolve("wallet.key");
        ChainClient client;
        try {
            client = new ChainClient(tonApi, Duration.ofSeconds(30));
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--ton-api: " + e.getMessage());
        }
        if (payoutAddress.isEmpty()) {
            payoutAddress = ChainWallet.addressOf(WalletKey.loadOrCreate(keyFile)).toNonBounceable();
        }
        String pays = "for closing a channel without the gateway and answering a stale close";
        try {
            Optional<ChainWallet> wallet = NodeWallet.open(keyFile, client, pays);
            OnChainSettlement settlement = settlement(client, wallet.orElse(null));
            if (wallet.isEmpty()) {
                NodeWallet.whenFunded(keyFile, client, pays, NodeWallet.RECHECK, settlement::payWith);
            }
            return settlement;
        } catch (ChainException e) {
            throw new Cocoon.StartFailure("--ton-api: " + e.getMessage(), e);
        }
    }

    private OnChainSettlement settlement(ChainClient client, ChainWallet wallet) {
        try {
            return new OnChainSettlement(client, closeThresholdNanoton, Clock.systemUTC(), wallet, OnChainSettlement.SILENCE_LIMIT);
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--close-threshold-nanoton: " + e.getMessage());
        }
    }
}
