package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.ledger.LedgerUnavailableException;
import org.cocoonjvm.billing.ledger.TestDatabase;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.protocol.grpc.Usage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Settlements the ledger did not take, retried in the background, against what can race them: a
 * settlement that did commit though its caller heard a failure, another gateway's sweep, and this
 * gateway's own restart. Each is charged once. On H2 ledgers; the outage is a book whose settle
 * fails as a script says.
 */
class PendingSettlementsTest {
    private static final PriceSchedule PRICES = PriceSchedule.of("synthetic", 2, 1);
    private static final String ACCOUNT = "acct-pending";
    private static final Duration EXPIRY = Duration.ofSeconds(60);
    private static final Usage CHECKPOINTED = Usage.newBuilder().setPromptTokens(10).setCompletionTokens(20).build();
    private static final Usage FINAL = Usage.newBuilder().setPromptTokens(10).setCompletionTokens(40).build();

    /** What the next settle calls do, in order; pass-through once it is empty. */
    private enum Fault {
        /** The database is away: nothing happens. */
        DOWN,
        /** The connection is lost at the COMMIT, after the database committed: it happened, the caller is told it failed. */
        LOST_AT_COMMIT
    }

    private final ExecutorService ledgerThreads = Executors.newFixedThreadPool(2);
    private final MutableClock clock = new MutableClock(Instant.now());
    private final Deque<Fault> faults = new ConcurrentLinkedDeque<>();
    private String url;
    private JdbcAccountBook ledger;
    private TonRequestBilling billing;

    @AfterEach
    void close() {
        ledgerThreads.shutdownNow();
        ledger.close();
    }

    private void start() {
        url = TestDatabase.H2.newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, clock, 2, new GatewayId("gw-1"), EXPIRY);
        ledger.open(ACCOUNT);
        ledger.credit(ACCOUNT, 1_000_000, "grant");
        billing = new TonRequestBilling(flaky(ledger), ledgerThreads, model -> PRICES, null);
    }

    @Test
    void aSettlementLongerThanAFewTriesAway_andCommittedUnseen_isChargedOnce_withoutARestart() throws Exception {
        start();
        faults.addAll(List.of(Fault.DOWN, Fault.DOWN, Fault.DOWN, Fault.LOST_AT_COMMIT));

        RequestBilling.Settling settling = reserve("req-1").settle("worker-1", null, FINAL);
        settling.accounted().toCompletableFuture().get(5, TimeUnit.SECONDS);
        long cost = Pricing.cost(PRICES, new TokenCounts(10, 0, 40, 0)).clientCost();
        assertThat(settling.cost().totalCost()).isEqualTo(cost);

        eventually("the ledger took it", () -> billing.settlementsPending() == 0 && faults.isEmpty());
        assertThat(ledger.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, 1_000_000 - cost, 0, cost));
        assertThat(ledger.requests(ACCOUNT)).singleElement().satisfies(r -> assertThat(r.requestId()).isEqualTo("req-1"));
    }

    @Test
    void aRetryAfterAnotherGatewaysSweep_chargesNothingMore() throws Exception {
        start();
        long checkpoint = checkpointedThenPending("req-2");

        clock.advance(EXPIRY.plusSeconds(1));
        try (JdbcAccountBook sweeper = JdbcAccountBook.open(url, clock, 1, new GatewayId("gw-2"), EXPIRY)) {
            assertThat(sweeper.sweep()).singleElement().satisfies(s -> assertThat(s.chargedNanoton()).isEqualTo(checkpoint));
        }
        faults.clear();   // the ledger is back: the retry finds the reservation ended by the sweep

        eventually("the retry gave up", () -> billing.settlementsPending() == 0);
        assertThat(ledger.balance(ACCOUNT)).as("billed the checkpoint, once")
                .isEqualTo(new AccountState(ACCOUNT, 1_000_000 - checkpoint, 0, checkpoint));
        assertThat(ledger.requests(ACCOUNT)).isEmpty();
    }

    @Test
    void aRetryAfterThisGatewaysOwnRestartRecovered_chargesNothingMore() throws Exception {
        start();
        long checkpoint = checkpointedThenPending("req-3");

        try (JdbcAccountBook restarted = JdbcAccountBook.open(url, clock, 1, new GatewayId("gw-1"), EXPIRY)) {
            assertThat(restarted.recoverOpenReservations()).singleElement()
                    .satisfies(s -> assertThat(s.chargedNanoton()).isEqualTo(checkpoint));
            faults.clear();

            eventually("the retry gave up", () -> billing.settlementsPending() == 0);
            assertThat(restarted.balance(ACCOUNT)).as("billed the checkpoint, once")
                    .isEqualTo(new AccountState(ACCOUNT, 1_000_000 - checkpoint, 0, checkpoint));
        }
    }

    /** A request checkpointed, then settled while the ledger is down for good (until the test says); returns the checkpoint's cost. */
    private long checkpointedThenPending(String requestId) throws Exception {
        RequestBilling.Charge charge = reserve(requestId);
        assertThat(charge.checkpoint(CHECKPOINTED).toCompletableFuture().get(5, TimeUnit.SECONDS)).isTrue();
        for (int i = 0; i < 1_000; i++) {
            faults.add(Fault.DOWN);
        }
        charge.settle("worker-1", null, FINAL).accounted().toCompletableFuture().get(5, TimeUnit.SECONDS);
        assertThat(billing.settlementsPending()).isEqualTo(1);
        return Pricing.cost(PRICES, new TokenCounts(10, 0, 20, 0)).clientCost();
    }

    private RequestBilling.Charge reserve(String requestId) throws Exception {
        return billing.reserve(requestId, ACCOUNT, "synthetic", 100, 50).toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    /** {@code book}, with each settle first meeting the next scripted fault. */
    private AccountBook flaky(AccountBook book) {
        return (AccountBook) Proxy.newProxyInstance(AccountBook.class.getClassLoader(), new Class<?>[] {AccountBook.class},
                (proxy, method, args) -> {
                    Fault fault = method.getName().equals("settle") ? faults.poll() : null;
                    if (fault == Fault.DOWN) {
                        throw new LedgerUnavailableException("settle", new SQLException("Connection refused", "08001"));
                    }
                    Object result;
                    try {
                        result = method.invoke(book, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                    if (fault == Fault.LOST_AT_COMMIT) {
                        throw new LedgerUnavailableException("settle", new SQLException("An I/O error occurred", "08006"));
                    }
                    return result;
                });
    }

    private static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("timed out waiting until " + what).isLessThan(deadline);
            Thread.sleep(20);
        }
    }
}
