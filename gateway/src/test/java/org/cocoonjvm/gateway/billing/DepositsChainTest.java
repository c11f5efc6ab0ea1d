package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;

import com.iwebpp.crypto.TweetNaclFast;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.DepositWatcher;
import org.cocoonjvm.billing.chain.LocalChain;
import org.cocoonjvm.billing.chain.TestChain;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

/**
 * Deposits on the real emulator (ton-billing's chain-emulator) into the durable ledger (an H2
 * file): credited once across re-polls and a restart of the gateway's ledger and watcher, unknown
 * comments credit nothing, unconfirmed transfers wait. Skips without Node.js or the emulator's
 * packages, except under CI=true, where a skip would hide a broken setup.
 */
class DepositsChainTest {
    private static final Path EMULATOR = Path.of("../ton-billing/chain-emulator");
    private static final long TON = 1_000_000_000L;
    /** Long enough that no test's polls ever get there by the wall clock. */
    private static final Duration NEVER = Duration.ofDays(1);

    private static LocalChain chain;
    private static ChainWallet client;

    @TempDir
    Path dir;
    private final ExecutorService ledgerThreads = Executors.newFixedThreadPool(2);
    private JdbcAccountBook book;
    private Deposits deposits;

    @BeforeAll
    static void startChain() {
        chain = TestChain.startOrSkip(EMULATOR);
        client = new ChainWallet(TweetNaclFast.Signature.keyPair(), chain.client(), chain.clock());
        chain.faucet(client.address(), BigInteger.valueOf(100 * TON));
        client.deploy();
    }

    @AfterAll
    static void stopChain() {
        if (chain != null) {
            chain.close();
        }
    }

    @AfterEach
    void stop() throws Exception {
        if (deposits != null) {
            deposits.close();
        }
        if (book != null) {
            book.close();
        }
        ledgerThreads.shutdownNow();
    }

    /** A gateway's ledger and watcher over an H2 file; polls only when told, so the test sees each. */
    private Deposits start(Address wallet, Duration confirmation, MeterRegistry meters) {
        book = JdbcAccountBook.open(ledgerUrl(), Clock.systemUTC());
        return deposits = new Deposits(chain.client(), wallet, book, ledgerThreads, chain.clock(),
                new Deposits.Options(NEVER, confirmation), meters);
    }

    private void restart(Address wallet, Duration confirmation, MeterRegistry meters) throws Exception {
        deposits.close();
        book.close();
        start(wallet, confirmation, meters);
    }

    private String ledgerUrl() {
        return "jdbc:h2:file:" + dir.resolve("ledger");
    }

    private static Address freshGatewayWallet() {
        return ChainWallet.addressOf(TweetNaclFast.Signature.keyPair());
    }

    private static double count(MeterRegistry meters, String name) {
        return meters.get(name).counter().count();
    }

    @Test
    void aDepositIsCreditedOnce_acrossRepollsAndARestart() throws Exception {
        Address gateway = freshGatewayWallet();
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        start(gateway, Duration.ZERO, meters);
        String comment = book.open("account-1").depositComment();

        client.transfer(gateway, BigInteger.valueOf(3 * TON), comment);
        // (The timer's first poll, at start, may also see the transfer: the counters see both threads.)
        deposits.pollNow();
        assertThat(deposits.pollNow().credited()).isEmpty();
        assertThat(book.balance("account-1").balanceNanoton()).isEqualTo(3 * TON);
        assertThat(count(meters, "cocoon.deposits.credited")).isEqualTo(1);

        // A restarted gateway rescans the wallet from its first transaction: the ledger refuses the repeat.
        SimpleMeterRegistry afterRestart = new SimpleMeterRegistry();
        restart(gateway, Duration.ZERO, afterRestart);
        DepositWatcher.PollResult rescan = deposits.pollNow();
        assertThat(rescan.credited()).isEmpty();
        assertThat(book.balance("account-1").balanceNanoton()).isEqualTo(3 * TON);
        assertThat(count(afterRestart, "cocoon.deposits.credited")).isZero();

        client.transfer(gateway, BigInteger.valueOf(TON), comment);
        deposits.pollNow();
        assertThat(book.balance("account-1").balanceNanoton()).isEqualTo(4 * TON);
        assertThat(count(afterRestart, "cocoon.deposits.credited")).isEqualTo(1);
    }

    /**
     * Two gateways on one ledger watching the same wallet, polling at the same moment: each deposit
     * is credited once, and the gateway that finds it credited moves on quietly (no conflict, no
     * failed poll).
     */
    @Test
    void twoGatewaysWatchingOneWallet_creditEachDepositOnce() throws Exception {
        Address gateway = freshGatewayWallet();
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        SimpleMeterRegistry otherMeters = new SimpleMeterRegistry();
        start(gateway, Duration.ZERO, meters);
        String comment = book.open("account-1").depositComment();
        try (JdbcAccountBook otherBook = JdbcAccountBook.open(ledgerUrl(), Clock.systemUTC(), 2, new GatewayId("gw-2"),
                     JdbcAccountBook.DEFAULT_LEASE_EXPIRY);
             Deposits other = new Deposits(chain.client(), gateway, otherBook, ledgerThreads, chain.clock(),
                     new Deposits.Options(NEVER, Duration.ZERO), otherMeters)) {
            for (int ton = 1; ton <= 3; ton++) {
                client.transfer(gateway, BigInteger.valueOf(ton * TON), comment);
            }

            CompletableFuture.allOf(CompletableFuture.runAsync(deposits::pollNow), CompletableFuture.runAsync(other::pollNow))
                    .get(60, TimeUnit.SECONDS);
            deposits.pollNow();
            other.pollNow();

            assertThat(book.balance("account-1").balanceNanoton()).isEqualTo(6 * TON);
            assertThat(count(meters, "cocoon.deposits.credited") + count(otherMeters, "cocoon.deposits.credited"))
                    .as("three deposits, credited by one gateway or the other").isEqualTo(3);
            for (MeterRegistry m : List.of(meters, otherMeters)) {
                assertThat(count(m, "cocoon.deposits.credit.conflicts")).isZero();
                assertThat(count(m, "cocoon.deposits.poll.failures")).isZero();
            }
        }
    }

    @Test
    void aTransferWithAnUnknownComment_creditsNothing_andIsCounted() {
        Address gateway = freshGatewayWallet();
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        start(gateway, Duration.ZERO, meters);
        book.open("account-1");

        client.transfer(gateway, BigInteger.valueOf(TON), "cocoon-not-an-account");
        deposits.pollNow();
        deposits.pollNow();

        assertThat(book.balance("account-1").balanceNanoton()).isZero();
        assertThat(count(meters, "cocoon.deposits.unknown.comment")).isEqualTo(1);
    }

    /** Audit G, L1: these were left in the wallet. */
    @Test
    void aCommentDifferingOnlyInCaseOrSurroundingSpaces_isCreditedToItsAccount() {
        Address gateway = freshGatewayWallet();
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        start(gateway, Duration.ZERO, meters);
        String comment = book.open("account-1").depositComment();

        client.transfer(gateway, BigInteger.valueOf(7 * TON / 10), comment.toUpperCase(Locale.ROOT));
        client.transfer(gateway, BigInteger.valueOf(6 * TON / 10), " " + comment + "\n");
        deposits.pollNow();

        assertThat(book.balance("account-1").balanceNanoton()).isEqualTo(13 * TON / 10);
        assertThat(count(meters, "cocoon.deposits.unknown.comment")).isZero();
    }

    @Test
    void aDepositIsNotCreditedBeforeItsConfirmation() {
        Address gateway = freshGatewayWallet();
        Duration confirmation = Duration.ofMinutes(10);
        start(gateway, confirmation, new SimpleMeterRegistry());
        String comment = book.open("account-1").depositComment();

        client.transfer(gateway, BigInteger.valueOf(2 * TON), comment);
        DepositWatcher.PollResult early = deposits.pollNow();
        assertThat(early.credited()).isEmpty();
        assertThat(early.awaitingConfirmation()).isEqualTo(1);
        assertThat(deposits.pollNow().awaitingConfirmation()).isEqualTo(1);
        assertThat(book.balance("account-1").balanceNanoton()).isZero();

        // The chain's clock, which both the wallet and the watcher read, moves past the confirmation.
        chain.advanceTime(confirmation.plusSeconds(1));
        assertThat(deposits.pollNow().credited()).extracting(DepositWatcher.Deposit::amountNanoton)
                .isEqualTo(List.of(2 * TON));
        assertThat(book.balance("account-1").balanceNanoton()).isEqualTo(2 * TON);
    }
}
