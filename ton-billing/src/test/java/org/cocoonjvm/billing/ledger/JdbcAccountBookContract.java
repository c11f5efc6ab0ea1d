package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountBookContract;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link AccountBookContract} on a real database, plus what only a durable book promises: it all
 * survives closing and reopening, and the schema is migrated once.
 */
abstract class JdbcAccountBookContract extends AccountBookContract {
    private final List<JdbcAccountBook> opened = new ArrayList<>();
    private String url;

    protected abstract TestDatabase database();

    @Override
    protected AccountBook newBook(Clock clock) {
        String fresh = database().newDatabaseUrl();
        if (url == null) {
            url = fresh;   // the first is the one the tests use as `book`
        }
        return open(fresh, clock);
    }

    private JdbcAccountBook open(String at, Clock clock) {
        JdbcAccountBook book = JdbcAccountBook.open(at, clock, 4);
        opened.add(book);
        return book;
    }

    private JdbcAccountBook reopen() {
        opened.forEach(JdbcAccountBook::close);
        opened.clear();
        return open(url, clock);
    }

    @AfterEach
    void closeBooks() {
        opened.forEach(JdbcAccountBook::close);
    }

    @Test
    void everything_survivesARestart() {
        book.credit("alice", 1_000, "tx-1");
        String comment = book.account("alice").depositComment();
        Reservation open = book.reserve("alice", 300);
        Reservation settled = book.reserve("alice", 100);
        Settlement first = book.settle(settled, 60);
        book.recordProgress(open, 25);

        JdbcAccountBook again = reopen();

        assertThat(again.balance("alice")).isEqualTo(new AccountState("alice", 940, 300, 60));
        assertThat(again.account("alice").depositComment()).isEqualTo(comment);
        assertThat(again.accountByDepositComment(comment).orElseThrow().accountId()).isEqualTo("alice");
        assertThat(again.credit("alice", 1_000, "tx-1")).as("credited before the restart").isFalse();
        assertThat(again.settle(settled, 99)).isEqualTo(first);
        assertThat(again.reserve("alice", 1).id()).as("ids are never reused").isGreaterThan(settled.id());
        assertThat(again.settle(open, 10)).as("progress survived").isEqualTo(new Settlement(open, 25, 275, 0));
    }

    @Test
    void requestRecords_areKeptWithTheirSettlementOnce() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        RequestRecord request = new RequestRecord("req-1", "worker-1", "00ff", "m", new TokenCounts(10, 2, 20, 5), 120, 70);

        book.settle(reservation, request);
        book.settle(reservation, request);

        assertThat(reopen().requests("alice")).containsExactly(request);
        assertThat(request.gatewayMarginNanoton()).isEqualTo(50);
    }

    /** The audit's columns are bounded; names past them are cut, as the reservation's label is, and the request is billed. */
    @Test
    void requestRecords_withNamesTooLongForTheAudit_areCutAndBilled() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        RequestRecord request = new RequestRecord("r".repeat(150), "w".repeat(1_500), null, "m".repeat(1_500),
                new TokenCounts(10, 2, 20, 5), 120, 70);

        assertThat(book.settle(reservation, request).chargedNanoton()).isEqualTo(120);

        assertThat(reopen().requests("alice")).containsExactly(new RequestRecord("r".repeat(100), "w".repeat(1_000), null,
                "m".repeat(1_000), new TokenCounts(10, 2, 20, 5), 120, 70));
    }

    @Test
    void aWorkerShare_forAReservationWithoutProgress_isRefused_evenWithNoProgressAtAll() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        WorkerShare share = new WorkerShare("00ff", 5, "w-1", new TokenCounts(1, 0, 1, 0));

        assertThatThrownBy(() -> book.recordProgress(Map.of(), Map.of(reservation, share)))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("a worker share for a reservation without progress");
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 1_000, 300, 0));
    }

    @Test
    void migrations_runOnceAndAreRecorded() throws Exception {
        reopen();
        reopen();

        try (Connection c = DriverManager.getConnection(url);
             Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT version, script FROM schema_version ORDER BY version")) {
            List<String> applied = new ArrayList<>();
            while (rs.next()) {
                applied.add(rs.getInt(1) + " " + rs.getString(2));
            }
            assertThat(applied).containsExactly("1 V1__accounts.sql", "2 V2__requests.sql", "3 V3__channels.sql",
                    "4 V4__closed_channels.sql", "5 V5__worker_fees.sql", "6 V6__gateways.sql", "7 V7__channel_contracts.sql",
                    "8 V8__replaced_channels.sql", "9 V9__credits_by_account.sql", "10 V10__lease_holders.sql",
                    "11 V11__lease_stopping.sql", "12 V12__lease_holder_pid_namespace.sql",
                    "13 V13__lease_holder_data_dir.sql", "14 V14__reservation_requests.sql");
        }
        assertThat(Migrations.latest()).isEqualTo(14);
    }

    /**
     * A build refuses a schema newer than its own: it would not know the newer columns (V13's data
     * dir and kept lease among them) and could clear or ignore them wrongly. An older build meets
     * this build's V13 the same way.
     */
    @Test
    void aSchemaNewerThanThisBuild_isRefused_namingBothVersions() throws Exception {
        reopen();
        opened.forEach(JdbcAccountBook::close);
        opened.clear();
        try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
            st.executeUpdate("INSERT INTO schema_version (version, script, applied_at_micros) VALUES ("
                    + (Migrations.latest() + 1) + ", 'V" + (Migrations.latest() + 1) + "__from_a_newer_build.sql', 0)");
        }
        assertThatThrownBy(this::reopen).isInstanceOf(LedgerUnavailableException.class).rootCause()
                .hasMessage("the ledger's schema is at version " + (Migrations.latest() + 1) + ", newer than this build ("
                        + Migrations.latest() + "): run a newer gateway");
    }
}
