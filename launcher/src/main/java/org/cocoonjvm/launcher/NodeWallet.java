package org.cocoonjvm.launcher;

import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Optional;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A node's own TON wallet on a live chain, from its {@code --wallet-key} file: deployed on start
 * once it holds coins, since an undeployed wallet can receive but not pay.
 */
final class NodeWallet {
    private static final Logger log = LoggerFactory.getLogger(NodeWallet.class);

    private NodeWallet() {}

    /**
     * The wallet, deployed when it holds coins; empty (after an error saying to fund it) when it
     * holds none yet, so that the node runs and the operator funds it and restarts.
     *
     * @param pays what the wallet pays for, for the log line
     * @throws ChainException when the chain's API could not tell (unreachable, rate-limited, not
     *                        toncenter): funding would not help, and the caller says what does
     */
    static Optional<ChainWallet> open(Path keyFile, ChainClient chain, String pays) {
        // The chain's clock is its last block's time, close to ours; toncenter serves no cheaper one.
        ChainWallet wallet = new ChainWallet(WalletKey.loadOrCreate(keyFile), chain, Clock.systemUTC());
        if ("active".equals(chain.state(wallet.address()))) {
            return Optional.of(wallet);
        }
        String address = wallet.address().toNonBounceable();
        BigInteger balance = chain.balance(wallet.address());
        if (balance.signum() == 0) {
            log.error("wallet {} holds no TON, so it can't pay {}: send it TON and restart", address, pays);
            return Optional.empty();
        }
        wallet.deploy();
        log.info("wallet {} deployed (it pays {})", address, pays);
        return Optional.of(wallet);
    }
}
