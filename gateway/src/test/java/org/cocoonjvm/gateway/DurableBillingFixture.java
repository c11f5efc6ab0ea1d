package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Context;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.ledger.TestDatabase;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterEach;

/**
 * The gateway on the durable ledger, as {@code ./cocoon gateway} runs it: the ledger's calls run on
 * a pool of their own, never on an event loop, and {@code GET /v1/account} shows what the ledger
 * holds. Subclasses pick the database.
 *
 * <p>The tests stand in two contracts, each run on H2 and on PostgreSQL:
 * {@link DurableBillingOneGatewayContract} (one gateway and its account on the ledger) and
 * {@link DurableBillingClusterContract} (gateway ids and their leases: two gateways on one ledger,
 * a sweep, a take-over, a crash's recovery). This base holds what they share: the ledger's pool,
 * the network and ledger a test starts and the checks after it (nothing called on an event loop),
 * {@link EventLoopGuard}, and the helpers both use.
 */
abstract class DurableBillingFixture {
    static final PriceSchedule PRICES = PriceSchedule.of("synthetic", 2, 1);

    /** A new, empty ledger database. */
    protected abstract TestDatabase database();

    String url;
    final ExecutorService ledgerThreads = Executors.newFixedThreadPool(4);
    final List<String> onEventLoop = new ArrayList<>();
    JdbcAccountBook ledger;
    TestNetwork net;

    TestNetwork start(long balance) {
        url = database().newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 4);
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, balance, new EventLoopGuard(ledger), ledgerThreads);
        return net;
    }

    @AfterEach
    void stop() {
        ledgerThreads.shutdownNow();
        if (net != null) {   // null when the database was not there to start on (a skipped test)
            net.close();
            ledger.close();
        }
        assertThat(onEventLoop).as("ledger calls made on an event loop").isEmpty();
    }

    long sent(WorkerNode worker) {
        var channels = net.workerStatus(worker).getJsonArray("channels");
        return channels.isEmpty() ? 0 : channels.getJsonObject(0).getLong("sent_nanoton");
    }

    /** What the ledger bills so far: charges of ended reservations, progress of open ones. */
    long billedSoFar() throws Exception {
        try (Connection c = DriverManager.getConnection(url);
             Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(CASE WHEN state = 'open' THEN progress_nanoton "
                     + "ELSE charged_nanoton END), 0) FROM reservations")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** The ledger, noting every call made on an event loop thread (where a blocking call stalls every connection on it). */
    class EventLoopGuard implements AccountBook {
        private final AccountBook book;

        EventLoopGuard(AccountBook book) {
            this.book = book;
        }

        private void check(String call) {
            if (Context.isOnEventLoopThread()) {
                synchronized (onEventLoop) {
                    onEventLoop.add(call + " on " + Thread.currentThread().getName());
                }
            }
        }

        @Override
        public Account open(String accountId) {
            check("open");
            return book.open(accountId);
        }

        @Override
        public AccountState balance(String accountId) {
            check("balance");
            return book.balance(accountId);
        }

        @Override
        public Account account(String accountId) {
            check("account");
            return book.account(accountId);
        }

        @Override
        public Optional<Account> accountByDepositComment(String depositComment) {
            check("accountByDepositComment");
            return book.accountByDepositComment(depositComment);
        }

        @Override
        public boolean credit(String accountId, long amountNanoton, String reference) {
            check("credit");
            return book.credit(accountId, amountNanoton, reference);
        }

        @Override
        public boolean creditOnce(String accountId, long amountNanoton, String reference) {
            check("creditOnce");
            return book.creditOnce(accountId, amountNanoton, reference);
        }

        @Override
        public Reservation reserve(String accountId, long amountNanoton, ReservationLabel label) {
            check("reserve");
            return book.reserve(accountId, amountNanoton, label);
        }

        @Override
        public Settlement settle(Reservation reservation, long actualCostNanoton) {
            check("settle");
            return book.settle(reservation, actualCostNanoton);
        }

        @Override
        public Settlement settle(Reservation reservation, RequestRecord request) {
            check("settle");
            return book.settle(reservation, request);
        }

        @Override
        public Optional<BilledRequest> request(String accountId, String requestId) {
            check("request");
            return book.request(accountId, requestId);
        }

        @Override
        public Settlement release(Reservation reservation) {
            check("release");
            return book.release(reservation);
        }

        @Override
        public boolean recordProgress(Reservation reservation, long costSoFarNanoton) {
            check("recordProgress");
            return book.recordProgress(reservation, costSoFarNanoton);
        }

        @Override
        public void recordProgress(Map<Reservation, Long> progress) {
            check("recordProgress (batch)");
            book.recordProgress(progress);
        }

        @Override
        public void recordProgress(Map<Reservation, Long> progress, Map<Reservation, WorkerShare> shares) {
            check("recordProgress (batch)");
            book.recordProgress(progress, shares);
        }

        @Override
        public List<RecoveredReservation> recoverOpenReservations() {
            check("recoverOpenReservations");
            return book.recoverOpenReservations();
        }
    }
}
