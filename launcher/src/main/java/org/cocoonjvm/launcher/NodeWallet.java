package org.cocoonjvm.launcher;

import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Consumer;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A node's own TON wallet on a live chain, from its {@code --wallet-key} file: deployed once it
 * holds coins, since an undeployed wallet can receive but not pay.
 */
final class NodeWallet {
    private static final Logger log = LoggerFactory.getLogger(NodeWallet.class);
    /** How often a wallet that held no TON at start is looked at again. */
    static final Duration RECHECK = Duration.ofMinutes(1);

    private NodeWallet() {}

    /**
     * The wallet, deployed when it holds coins; empty (after a warning saying to fund it) when it
     * holds none yet: the node runs meanwhile, and {@link #whenFunded} takes it up once funded.
     *
     * @param pays what the wallet pays for, for the log line
     * @throws ChainException when the chain's API could not tell (unreachable, rate-limited, not
     *                        toncenter): funding would not help, and the caller says what does
     */
    static Optional<ChainWallet> open(Path keyFile, ChainClient chain, String pays) {
        ChainWallet wallet = wallet(keyFile, chain);
        Optional<ChainWallet> paying = deployIfFunded(wallet, chain, pays);
        if (paying.isEmpty()) {
            // A new node's wallet is empty: a WARN, not an ERROR, and no restart once funded (audit M, M-9).
            log.warn("wallet {} holds no TON, so it can't pay {} yet: send it TON; it is checked again every {} s, "
                    + "no restart needed", wallet.address().toNonBounceable(), pays, RECHECK.toSeconds());
        }
        return paying;
    }

    /**
     * Looks at a wallet {@link #open} found empty every {@code every}, on a daemon thread, until it
     * holds coins: then deploys it, says so once, and hands it to {@code funded}. A chain that
     * cannot tell meanwhile is asked again at the next look.
     *
     * @return the thread, which an interrupt ends
     */
    static Thread whenFunded(Path keyFile, ChainClient chain, String pays, Duration every, Consumer<ChainWallet> funded) {
        ChainWallet wallet = wallet(keyFile, chain);
        return Thread.ofVirtual().name("wallet-funding").start(() -> {
            try {
                while (true) {
                    Thread.sleep(every);
                    try {
                        Optional<ChainWallet> paying = deployIfFunded(wallet, chain, pays);
                        if (paying.isPresent()) {
                            funded.accept(paying.get());
                            return;
                        }
                    } catch (ChainException e) {
                        log.debug("could not check wallet {}: {}", wallet.address().toNonBounceable(), e.getMessage());
                    }
                }
            } catch (InterruptedException stopping) {
                // The node stops: nothing is left to pay for.
            }
        });
    }

    private static ChainWallet wallet(Path keyFile, ChainClient chain) {
        // The chain's clock is its last block's time, close to ours; toncenter serves no cheaper one.
        return new ChainWallet(WalletKey.loadOrCreate(keyFile), chain, Clock.systemUTC());
    }

    /** The wallet when it is deployed, or holds coins to deploy it with now; empty when it holds none. */
    private static Optional<ChainWallet> deployIfFunded(ChainWallet wallet, ChainClient chain, String pays) {
        if ("active".equals(chain.state(wallet.address()))) {
            return Optional.of(wallet);
        }
        BigInteger balance = chain.balance(wallet.address());
        if (balance.signum() == 0) {
            return Optional.empty();
        }
        wallet.deploy();
        log.info("wallet {} holds {} nanoTON: deployed, it pays {}", wallet.address().toNonBounceable(), balance, pays);
        return Optional.of(wallet);
    }
}
