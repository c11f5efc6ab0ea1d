package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.math.BigInteger;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.LoggerFactory;
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

    /** Audit M, M-9: every new worker started with an ERROR asking for a restart once its wallet was funded. */
    @Test
    void anUnfundedWallet_isAWarning_andTakenUpOnceFunded_withoutARestart() throws Exception {
        Path key = dir.resolve("later.key");
        Logger logger = (Logger) LoggerFactory.getLogger(NodeWallet.class);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        logger.addAppender(events);
        try {
            assertThat(NodeWallet.open(key, chain.client(), "for a test")).isEmpty();
            Address address = ChainWallet.addressOf(WalletKey.loadOrCreate(key));
            assertThat(events.list).singleElement().satisfies(e -> {
                assertThat(e.getLevel()).isEqualTo(Level.WARN);
                assertThat(e.getFormattedMessage()).isEqualTo("wallet " + address.toNonBounceable() + " holds no TON, so "
                        + "it can't pay for a test yet: send it TON; it is checked again every 60 s, no restart needed");
            });

            CompletableFuture<ChainWallet> funded = new CompletableFuture<>();
            Thread checking = NodeWallet.whenFunded(key, chain.client(), "for a test", Duration.ofMillis(100), funded::complete);
            Thread.sleep(300);
            assertThat(funded).isNotDone();
            chain.faucet(address, BigInteger.valueOf(2_000_000_000L));

            assertThat(funded.get(30, TimeUnit.SECONDS).address().toRaw()).isEqualTo(address.toRaw());
            checking.join(5_000);
            assertThat(checking.isAlive()).isFalse();
            assertThat(chain.client().state(address)).isEqualTo("active");
            assertThat(events.list).hasSize(2).last().satisfies(e -> {
                assertThat(e.getLevel()).isEqualTo(Level.INFO);
                assertThat(e.getFormattedMessage()).startsWith("wallet " + address.toNonBounceable() + " holds ")
                        .endsWith("nanoTON: deployed, it pays for a test");
            });
        } finally {
            logger.detachAppender(events);
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
