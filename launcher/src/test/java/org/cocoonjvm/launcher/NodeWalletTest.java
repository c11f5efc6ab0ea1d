package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigInteger;
import com.iwebpp.crypto.TweetNaclFast;
import java.nio.file.Path;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.LocalChain;
import org.cocoonjvm.billing.chain.TestChain;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

/** A node's wallet against the real @ton/sandbox emulator (skipped without it, except under CI). */
class NodeWalletTest {
    private static final Path EMULATOR = Path.of("../ton-billing/chain-emulator");
    private static LocalChain chain;

    @TempDir
    Path dir;

    @BeforeAll
    static void startChain() {
        chain = TestChain.startOrSkip(EMULATOR);
    }

    @AfterAll
    static void stopChain() {
        if (chain != null) {
            chain.close();
        }
    }

    @Test
    void anUnfundedWallet_paysNothing_thenDeploysOnceFunded_andIsKeptAcrossRestarts() {
        Path key = dir.resolve("wallet.key");

        assertThat(NodeWallet.open(key, chain.client(), "for a test")).isEmpty();

        Address funded = ChainWallet.addressOf(WalletKey.loadOrCreate(key));
        chain.faucet(funded, BigInteger.valueOf(2_000_000_000L));
        ChainWallet wallet = NodeWallet.open(key, chain.client(), "for a test").orElseThrow();
        assertThat(wallet.address().toRaw()).isEqualTo(funded.toRaw());
        assertThat(chain.client().state(funded)).isEqualTo("active");

        // A restart finds it deployed and pays from it at once.
        ChainWallet again = NodeWallet.open(key, chain.client(), "for a test").orElseThrow();
        Address payee = ChainWallet.addressOf(TweetNaclFast.Signature.keyPair());
        again.transfer(payee, BigInteger.valueOf(100_000_000L), "paid");
        assertThat(chain.client().balance(payee)).isPositive();
    }
}
