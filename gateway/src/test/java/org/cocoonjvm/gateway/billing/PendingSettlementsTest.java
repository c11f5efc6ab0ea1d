package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
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
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
    /** What the book's stall() says: a call has been out too long. Null: none has. */
    private volatile String stalled;
    private final AtomicInteger settleCalls = new AtomicInteger();
    private String url;
    private JdbcAccountBook ledger;
    private TonRequestBilling billing;

    @AfterEach
    void close() {
        ledgerThreads.shutdownNow();
        ledger.close();
    }

    private void start() {
        start(PendingJournal.inMemory());
    }

    private void start(PendingJournal journal) {
        url = TestDatabase.H2.newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, clock, 2, new GatewayId("gw-1"), EXPIRY);
        ledger.open(ACCOUNT);
        ledger.credit(ACCOUNT, 1_000_000, "grant");
        billing = new TonRequestBilling(flaky(ledger), ledgerThreads, model -> PRICES, null, journal);
    }

    /**
     * Audit N, N-4: a gateway stopped before the ledger came back. With the journal in its data
     * dir, the next start bills what the client was told, not the last checkpoint; a settlement
     * the ledger takes at once writes nothing to disk.
     */
    @Test
    void aSettlementPendingWhenTheGatewayStops_isBilledAsToldByTheNextStart_beforeItsRecovery(@TempDir Path dataDir)
            throws Exception {
        start(PendingJournal.inDirectory(dataDir));
        Path file = dataDir.resolve(PendingJournal.FILE_NAME);
        reserve("req-at-once").settle("worker-1", null, FINAL).accounted().toCompletableFuture().get(5, TimeUnit.SECONDS);
        assertThat(file).as("the normal path writes nothing").doesNotExist();

        long checkpoint = checkpointedThenPending("req-4");
        assertThat(Files.readAllLines(file)).as("kept before the client was answered").singleElement().asString()
                .contains("req-4");
        long told = Pricing.cost(PRICES, new TokenCounts(10, 0, 40, 0)).clientCost();
        assertThat(told).isGreaterThan(checkpoint);
        try (LogLines closing = new LogLines(TonRequestBilling.class)) {
            billing.close();   // the gateway stops, the ledger still away
            assertThat(closing.lines()).singleElement().asString().contains("1 settlements (" + told + " nanoTON)",
                    "kept in " + file, "bills them as their clients were told");
        }
        ledgerThreads.shutdownNow();

        try (JdbcAccountBook restarted = JdbcAccountBook.open(url, clock, 1, new GatewayId("gw-1"), EXPIRY)) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted).chargedNanoton()).isEqualTo(told);
            assertThat(restarted.recoverOpenReservations()).as("nothing left to end at a checkpoint").isEmpty();
            assertThat(restarted.balance(ACCOUNT)).as("what the clients were told, each once")
                    .isEqualTo(new AccountState(ACCOUNT, 1_000_000 - 2 * told, 0, 2 * told));
            assertThat(restarted.request(ACCOUNT, "req-4")).hasValueSatisfying(r -> assertThat(r.chargedNanoton()).isEqualTo(told));
        }
        assertThat(file).doesNotExist();
    }

    /** A journal whose settlement the ledger takes in the background: its line is gone with it. */
    @Test
    void aSettlementTakenInTheBackground_leavesNothingOnDisk(@TempDir Path dataDir) throws Exception {
        start(PendingJournal.inDirectory(dataDir));
        faults.addAll(List.of(Fault.DOWN, Fault.DOWN));
        reserve("req-5").settle("worker-1", null, FINAL).accounted().toCompletableFuture().get(5, TimeUnit.SECONDS);
        eventually("the ledger took it", () -> billing.settlementsPending() == 0 && faults.isEmpty());
        assertThat(dataDir.resolve(PendingJournal.FILE_NAME)).doesNotExist();
    }

    /**
     * Review R, R-4: calls already queued on the ledger's threads when the stall is seen are
     * refused or kept when they run, instead of each waiting out the hung database in turn.
     */
    @Test
    void callsQueuedBeforeAStallWasSeen_areRefusedOrKept_whenTheyRun() throws Exception {
        start();
        RequestBilling.Charge charge = reserve("req-6");
        CountDownLatch hung = new CountDownLatch(1);
        for (int i = 0; i < 2; i++) {
            ledgerThreads.execute(() -> {  // both ledger threads in a call the database does not answer
                try {
                    hung.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }
        CompletableFuture<RequestBilling.Charge> reserving = billing.reserve("req-7", "test-key", ACCOUNT, "synthetic", 100, 50)
                .toCompletableFuture();
        CompletableFuture<?> reading = billing.account(ACCOUNT).toCompletableFuture();
        CompletableFuture<Boolean> progress = charge.checkpoint(CHECKPOINTED).toCompletableFuture();
        RequestBilling.Settling settling = charge.settle("worker-1", null, FINAL);
        int settledBefore = settleCalls.get();
        stalled = "a ledger call has been out for 3 s";
        hung.countDown();

        for (CompletableFuture<?> refused : List.of(reserving, reading)) {
            assertThatThrownBy(() -> refused.get(5, TimeUnit.SECONDS)).cause().isInstanceOfSatisfying(ApiException.class,
                    e -> assertThat(e.kind()).isEqualTo(ErrorKind.LEDGER_UNAVAILABLE));
        }
        assertThatThrownBy(() -> progress.get(5, TimeUnit.SECONDS)).cause().isInstanceOf(LedgerUnavailableException.class);
        settling.accounted().toCompletableFuture().get(5, TimeUnit.SECONDS);
        assertThat(billing.settlementsPending()).as("kept for the retries").isEqualTo(1);
        assertThat(settleCalls.get()).as("not sent into the hung database").isEqualTo(settledBefore);

        stalled = null;
        eventually("the ledger took it", () -> billing.settlementsPending() == 0);
        long cost = Pricing.cost(PRICES, new TokenCounts(10, 0, 40, 0)).clientCost();
        assertThat(ledger.balance(ACCOUNT)).as("the settlement, once; req-7 held nothing")
                .isEqualTo(new AccountState(ACCOUNT, 1_000_000 - cost, 0, cost));
    }

    /** What one logger logged at WARN and above while open. */
    private static final class LogLines implements AutoCloseable {
        private final ch.qos.logback.classic.Logger logger;
        private final ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> events =
                new ch.qos.logback.core.read.ListAppender<>();

        LogLines(Class<?> of) {
            logger = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(of);
            events.start();
            logger.addAppender(events);
        }

        List<String> lines() {
            return events.list.stream().filter(e -> e.getLevel().isGreaterOrEqual(ch.qos.logback.classic.Level.WARN))
                    .map(ch.qos.logback.classic.spi.ILoggingEvent::getFormattedMessage).toList();
        }

        @Override
        public void close() {
            logger.detachAppender(events);
        }
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
            assertThat(sweeper.sweep()).singleElement().satisfies(s -> assertThat(s.settlement().chargedNanoton()).isEqualTo(checkpoint));
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
                    .satisfies(s -> assertThat(s.settlement().chargedNanoton()).isEqualTo(checkpoint));
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
        return billing.reserve(requestId, "test-key", ACCOUNT, "synthetic", 100, 50).toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    /** {@code book}, with each settle first meeting the next scripted fault. */
    private AccountBook flaky(AccountBook book) {
        return (AccountBook) Proxy.newProxyInstance(AccountBook.class.getClassLoader(), new Class<?>[] {AccountBook.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("stall") || method.getName().equals("outage")) {
                        return Optional.ofNullable(stalled);
                    }
                    if (method.getName().equals("settle")) {
                        settleCalls.incrementAndGet();
                    }
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
