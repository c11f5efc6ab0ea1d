package org.cocoonjvm.launcher;

import com.iwebpp.crypto.TweetNaclFast;
import io.micrometer.core.instrument.MeterRegistry;
import java.math.BigInteger;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.LocalChain;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.Deposits;
import org.cocoonjvm.worker.payments.OnChainSettlement;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * The demo's money on a private chain: the emulator ({@link LocalChain}), a gateway wallet with a
 * fresh key, and a client wallet that pays the demo account's deposit into it, credited by the
 * gateway's own {@link Deposits} watcher, as a client's payment would be.
 */
final class DemoChain implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DemoChain.class);
    /** The emulator's transactions are final at once; poll often so that the demo starts fast. */
    private static final Deposits.Options WATCH = new Deposits.Options(Duration.ofMillis(100), Duration.ZERO);
    /** What the client wallet keeps for its own fees, beyond the deposit. */
    private static final long FEES_NANOTON = 1_000_000_000L;
    private static final Duration CREDIT_TIMEOUT = Duration.ofSeconds(30);
    /** A worker's wallet: enough for an uncooperative close's gas. */
    private static final long WORKER_WALLET_NANOTON = 2_000_000_000L;
    /** Workers close a channel cooperatively once it owes 0.1 TON (well above dust). */
    private static final long WORKER_CLOSE_THRESHOLD_NANOTON = 100_000_000L;

    /** Starting while the nodes start: the emulator takes seconds to load its WASM. */
    private final CompletableFuture<LocalChain> starting;
    private final TweetNaclFast.Signature.KeyPair gatewayKeys;
    private final Address gatewayWallet;
    private LocalChain chain;
    private Deposits deposits;

    private DemoChain(CompletableFuture<LocalChain> starting) {
        this.starting = starting;
        this.gatewayKeys = TweetNaclFast.Signature.keyPair();
        this.gatewayWallet = ChainWallet.addressOf(gatewayKeys);
    }

    /**
     * The chain, starting in the background, when Node.js and the emulator's packages are there;
     * otherwise empty, after one log line saying why.
     */
    static Optional<DemoChain> startIfAvailable(Path emulatorDir) {
        if (!LocalChain.isAvailable(emulatorDir)) {
            log.info("demo: no Node.js or no chain emulator packages at {} ((cd ton-billing/chain-emulator && npm ci "
                    + "--legacy-peer-deps)); funding the demo account with a start grant instead", emulatorDir);
            return Optional.empty();
        }
        return Optional.of(new DemoChain(CompletableFuture.supplyAsync(() -> LocalChain.start(emulatorDir, false))));
    }

    /**
     * {@code ton-billing/chain-emulator} of the checkout the launcher runs from: the launcher's jar
     * (or classes) sit in {@code launcher/target}, two levels below the checkout's root.
     */
    static Path defaultEmulatorDir() {
        try {
            Path code = Path.of(DemoChain.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return code.getParent().getParent().getParent().resolve("ton-billing").resolve("chain-emulator");
        } catch (URISyntaxException | RuntimeException e) {
            return Path.of("ton-billing", "chain-emulator");
        }
    }

    Address gatewayWallet() {
        return gatewayWallet;
    }

    /**
     * Once the chain is up: the gateway wallet, given {@code nanoton} by the faucet and deployed,
     * deploys, funds and opens each worker's channel on chain.
     */
    ChannelOnChain channels(long nanoton) {
        return new ChannelOnChain(chain().client(), fundedWallet(gatewayKeys, nanoton));
    }

    /** A worker's side on chain: a faucet-funded wallet, its payout address, and its settlement. */
    WorkerSide worker() {
        ChainWallet wallet = fundedWallet(TweetNaclFast.Signature.keyPair(), WORKER_WALLET_NANOTON);
        return new WorkerSide(wallet.address().toNonBounceable(), new OnChainSettlement(chain().client(),
                WORKER_CLOSE_THRESHOLD_NANOTON, chain().clock(), wallet, OnChainSettlement.SILENCE_LIMIT));
    }

    record WorkerSide(String payoutAddress, OnChainSettlement settlement) {}

    /** Starts the gateway's deposit watcher on its wallet, once the chain is up. */
    void watch(GatewayLedger.Billing billing, MeterRegistry meters) {
        chain();
        deposits = new Deposits(chain.client(), gatewayWallet, billing.accounts(), billing.ledgerThreads(), chain.clock(),
                WATCH, meters);
    }

    /**
     * After {@link #watch}: a client wallet from the faucet pays {@code nanoton} with {@code accountId}'s deposit comment
     * into the gateway wallet; returns once the watcher has credited it.
     */
    void fund(AccountBook accounts, String accountId, long nanoton) throws InterruptedException {
        String comment = accounts.account(accountId).depositComment();
        long before = accounts.balance(accountId).balanceNanoton();
        ChainWallet client = fundedWallet(TweetNaclFast.Signature.keyPair(), nanoton + FEES_NANOTON);
        client.transfer(gatewayWallet, BigInteger.valueOf(nanoton), comment);
        long deadline = System.nanoTime() + CREDIT_TIMEOUT.toNanos();
        while (accounts.balance(accountId).balanceNanoton() < before + nanoton) {
            if (System.nanoTime() > deadline) {
                throw new ChainException("unconfirmed", "the demo deposit was not credited within " + CREDIT_TIMEOUT);
            }
            Thread.sleep(50);
        }
        log.info("demo: {} paid {} nanoTON into the gateway wallet {} with the comment {}; credited to {}",
                client.address().toNonBounceable(), nanoton, gatewayWallet.toNonBounceable(), comment, accountId);
    }

    private LocalChain chain() {
        if (chain == null) {
            try {
                chain = starting.join();
            } catch (CompletionException e) {
                throw e.getCause() instanceof RuntimeException cause ? cause : e;
            }
        }
        return chain;
    }

    private ChainWallet fundedWallet(TweetNaclFast.Signature.KeyPair keys, long nanoton) {
        ChainWallet wallet = new ChainWallet(keys, chain().client(), chain().clock());
        chain().faucet(wallet.address(), BigInteger.valueOf(nanoton));
        wallet.deploy();
        return wallet;
    }

    @Override
    public void close() throws Exception {
        if (deposits != null) {
            deposits.close();
        }
        // A chain that is still starting is closed as soon as it is up, one that failed needs nothing.
        starting.thenAccept(LocalChain::close);
    }
}
