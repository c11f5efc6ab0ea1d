package org.cocoonjvm.launcher;

import io.micrometer.core.instrument.MeterRegistry;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.Deposits;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;
import picocli.CommandLine.Option;

/** {@code cocoon gateway}'s TON wallet and the deposit watcher over it. */
final class DepositOptions {
    private static final Logger log = LoggerFactory.getLogger(DepositOptions.class);

    @Option(names = "--ton-api", paramLabel = "URL",
            description = "A toncenter v2 endpoint (e.g. https://toncenter.com/api/v2). With it the gateway credits deposits "
                    + "into its wallet to the account named by the transfer's comment, and deploys, funds and opens each worker's "
                    + "payment channel on chain from that wallet (which must hold TON for it); without it the gateway makes no "
                    + "network calls to TON and its channels stay off chain.")
    String tonApi;

    @Option(names = "--wallet-key", paramLabel = "FILE",
            description = "The gateway wallet's Ed25519 seed (64 hex digits), created (mode 0600) on first start if absent; "
                    + "its V4R2 address is the deposit address unless --deposit-address is given. Default: wallet.key in --data-dir.")
    Path walletKey;

    @Option(names = "--deposit-poll-seconds", defaultValue = "5",
            description = "How often the wallet's transactions are read (with --ton-api). Default: ${DEFAULT-VALUE}.")
    long pollSeconds;

    @Option(names = "--deposit-confirmation-seconds", defaultValue = "10",
            description = "How old a deposit must be, by the chain's clock, before it is credited. Default: ${DEFAULT-VALUE}.")
    long confirmationSeconds;

    /** The address of the gateway's own wallet, from its key file (created if absent). */
    Address walletAddress(Path dataDir) {
        return ChainWallet.addressOf(WalletKey.loadOrCreate(keyFile(dataDir)));
    }

    /**
     * The channels on chain, paid from the gateway's wallet; null (channels off chain) without
     * {@code --ton-api}. Nothing is asked of the chain here: a slow API held the start for its
     * whole timeout. Whether the wallet can pay is checked in the background and said once (an
     * INFO, or a WARN naming the cause); whatever the answer, each worker's channel is opened on
     * chain when it registers, and refused with the cause while the chain can't.
     */
    ChannelOnChain channels(Path dataDir) {
        if (tonApi == null) {
            return null;
        }
        ChainClient chain = new ChainClient(tonApi, Duration.ofSeconds(30));
        ChannelOnChain channels = new ChannelOnChain(chain, new ChainWallet(WalletKey.loadOrCreate(keyFile(dataDir)), chain,
                Clock.systemUTC()));
        String wallet = walletAddress(dataDir).toNonBounceable();
        Thread.ofVirtual().name("wallet-check").start(() -> {
            try {
                channels.walletReady();
                log.info("the gateway's wallet {} pays for the workers' payment channels on chain", wallet);
            } catch (ChainException e) {
                // The message says what failed (empty, refused, rate-limited, not toncenter, timed out).
                log.warn("the gateway's wallet {} can't open payment channels yet: {}; workers paid on chain are refused with"
                        + " that reason until it can, and served from then on", wallet, e.getMessage());
            }
        });
        return channels;
    }

    private Path keyFile(Path dataDir) {
        return walletKey != null ? walletKey : dataDir.resolve("wallet.key");
    }

    /** The watcher's settings, checked before anything starts. */
    Deposits.Options options() {
        try {
            return new Deposits.Options(Duration.ofSeconds(pollSeconds), Duration.ofSeconds(confirmationSeconds));
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException(e.getMessage());
        }
    }

    /**
     * Starts crediting deposits into {@code depositAddress}; nothing (and no network call) without
     * {@code --ton-api}. Close the result before the ledger.
     */
    /** Whether {@link #start} watches the chain for deposits. */
    boolean watching() {
        return tonApi != null;
    }

    AutoCloseable start(Address depositAddress, Deposits.Options options, GatewayLedger.Billing billing, MeterRegistry meters) {
        if (tonApi == null) {
            return () -> { };
        }
        // The chain's clock is its last block's time, close to ours; toncenter serves no cheaper one.
        return new Deposits(new ChainClient(tonApi, Duration.ofSeconds(30)), depositAddress, billing.accounts(),
                billing.ledgerThreads(), Clock.systemUTC(), options, meters);
    }

    static Address parse(String depositAddress) {
        try {
            return TonAddresses.parse(depositAddress);
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--deposit-address: not a TON address: " + depositAddress);
        }
    }
}
