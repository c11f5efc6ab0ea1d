package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.accounts.Reservation;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A PostgreSQL restart under an open book (the audit's Finding 2): every pooled connection is one
 * the restart kills. While the server is down, calls fail at once and the book says why; once it is
 * back, the very first calls succeed (no connection the restart killed is lent to a caller), the
 * lease renews at its next beat, and the book is reachable again. On a server of the test's own.
 */
class PostgresLedgerOutageTest {
    private static final int POOL = 4;
    private static final String ACCOUNT = "acct-outage";

    private PostgresServer server;
    private JdbcAccountBook book;

    @BeforeEach
    void open() {
        server = PostgresServer.startOwn();
        book = JdbcAccountBook.open(server.newDatabaseUrl(), Clock.systemUTC(), POOL, new GatewayId("gw-1"),
                Duration.ofMinutes(1));
        book.open(ACCOUNT);
        book.credit(ACCOUNT, 1_000, "grant");
    }

    @AfterEach
    void close() {
        if (book != null) {
            book.close();
        }
        if (server != null) {
            server.stop();
        }
    }

    @Test
    void afterARestart_theFirstCallsSucceed_theLeaseRenews_andTheBookIsReachableAgain() {
        assertThat(book.outage()).isEmpty();

        server.shutDown();
        // Twice each: a failed reconnect must not put a dead connection back for the next caller.
        for (int i = 0; i < 2; i++) {
            assertThatThrownBy(() -> book.balance(ACCOUNT)).isInstanceOf(LedgerUnavailableException.class);
            assertThatThrownBy(book::renewLease).isInstanceOf(LedgerUnavailableException.class);
        }
        assertThat(book.outage()).as("known down while the server is").hasValueSatisfying(why ->
                assertThat(why).contains("renew the lease").contains("SQLState 08"));

        server.startAgain();
        book.renewLease();   // the lease keeper's next beat
        for (int i = 0; i < 2 * POOL; i++) {
            assertThat(book.balance(ACCOUNT)).as("call %d after the restart", i).isEqualTo(new AccountState(ACCOUNT, 1_000, 0, 0));
        }
        Reservation held = book.reserve(ACCOUNT, 100);
        book.settle(held, 40);
        assertThat(book.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, 960, 0, 40));
        assertThat(book.outage()).as("reachable again").isEmpty();
    }

    /** A transaction whose connection the restart killed before it committed is run again on a fresh one. */
    @Test
    void aTransactionCutBeforeItsCommit_runsAgainOnAFreshConnection() {
        server.shutDown();
        server.startAgain();

        // Every pooled connection is dead now and no caller has found out yet: the first one to.
        assertThat(book.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, 1_000, 0, 0));
        Reservation held = book.reserve(ACCOUNT, 100);
        assertThat(book.settle(held, 40).chargedNanoton()).isEqualTo(40);
        assertThat(book.outage()).isEmpty();
    }

    /**
     * A database that hangs rather than refuses (audit D): a call used to wait for as long as it
     * hung, the book saying nothing. Now the socket's time limit ends it as a lost connection, the
     * book reports the outage, and once the server answers again the calls succeed.
     */
    @Test
    void aHungDatabase_failsACallAtTheSocketTimeLimit_andIsReportedDown() {
        book.close();
        book = JdbcAccountBook.open(server.newDatabaseUrl() + "&socketTimeout=2", Clock.systemUTC(), POOL, new GatewayId("gw-2"),
                Duration.ofMinutes(1));
        book.open(ACCOUNT);

        server.freeze();
        long started = System.nanoTime();
        try {
            assertThat(book.stall()).as("no call out yet").isEmpty();
            assertThatThrownBy(() -> book.balance(ACCOUNT)).isInstanceOf(LedgerUnavailableException.class);
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(10));
            assertThat(book.outage()).as("known down while it hangs").isPresent();
        } finally {
            server.thaw();
        }

        assertThat(book.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, 0, 0, 0));
        assertThat(book.outage()).isEmpty();
    }

    /**
     * A call left unanswered past {@link Transactions#STALL} makes the book say it hangs, before
     * the driver's socket limit ends that call: callers stop queueing behind it (audit N, N-1).
     */
    @Test
    void aCallUnansweredForSeconds_showsAsAStall_untilItComesBack() throws Exception {
        server.freeze();
        CompletableFuture<AccountState> hung;
        try {
            hung = CompletableFuture.supplyAsync(() -> book.balance(ACCOUNT));
            Thread.sleep(Transactions.STALL.toMillis() / 2);
            assertThat(book.stall()).as("a call out for less than the limit").isEmpty();
            long deadline = System.nanoTime() + Transactions.STALL.multipliedBy(2).toNanos();
            while (book.stall().isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(book.stall()).hasValueSatisfying(why -> assertThat(why).contains("unanswered for"));
            assertThat(book.outage()).as("what /ready reads").hasValueSatisfying(why -> assertThat(why).contains("unanswered for"));
            assertThat(hung).isNotDone();
        } finally {
            server.thaw();
        }
        assertThat(hung.get(20, TimeUnit.SECONDS)).isEqualTo(new AccountState(ACCOUNT, 1_000, 0, 0));
        assertThat(book.stall()).isEmpty();
        assertThat(book.outage()).isEmpty();
    }

    /**
     * Audit D: an outage longer than the lease expiry stops every gateway's renewals alike, and the
     * first keeper to renew after it swept its peers, alive as they were. Now it holds its sweeps
     * until they have had their beats; a peer that stays silent is still swept after that.
     */
    @Test
    void afterAnOutageLongerThanTheExpiry_livePeersAreNotSwept_butASilentOneStillIs() throws Exception {
        MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
        String url = server.newDatabaseUrl();
        JdbcAccountBook a = JdbcAccountBook.open(url, clock, 2, new GatewayId("gw-a"), Duration.ofSeconds(30));
        JdbcAccountBook b = JdbcAccountBook.open(url, clock, 2, new GatewayId("gw-b"), Duration.ofSeconds(30));
        List<LeaseLostException> lost = new CopyOnWriteArrayList<>();
        try (LeaseKeeper keeperA = LeaseKeeper.start(a, Duration.ofHours(1), lost::add);
             LeaseKeeper keeperB = LeaseKeeper.start(b, Duration.ofHours(1), lost::add)) {
            server.shutDown();
            clock.advance(Duration.ofSeconds(40));   // both leases run out while neither can renew
            keeperA.beat();
            keeperB.beat();
            server.startAgain();

            keeperA.beat();                          // A renews first: B's lease has expired, B is alive
            keeperB.beat();
            for (int i = 0; i < LeaseKeeper.SWEEP_HOLD_BEATS; i++) {
                clock.advance(Duration.ofSeconds(5));
                keeperA.beat();
                keeperB.beat();
            }
            assertThat(lost).as("no live gateway fenced").isEmpty();

            clock.advance(Duration.ofSeconds(31));   // now B falls silent past its expiry
            keeperA.beat();
            keeperB.beat();
            assertThat(lost).singleElement().satisfies(e -> assertThat(e.gateway()).isEqualTo(new GatewayId("gw-b")));
        } finally {
            a.close();
            b.close();
        }
    }
}
