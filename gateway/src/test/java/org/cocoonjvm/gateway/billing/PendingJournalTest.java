package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.ledger.LedgerUnavailableException;
import org.cocoonjvm.billing.ledger.TestDatabase;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * The journal of settlements the ledger did not take: what it writes, what a start replays from
 * it, and that a replay bills each request once whatever happened to its reservation meanwhile
 * (taken unseen, replayed before, ended by recovery), and skips a line torn by a crash. On H2
 * ledgers, a restart being a new journal and a new book on the same file and database.
 */
class PendingJournalTest {
    private static final String ACCOUNT = "acct-journal";
    private static final long START = 1_000_000;
    private static final Duration EXPIRY = Duration.ofSeconds(60);

    @TempDir
    Path dataDir;

    private final MutableClock clock = new MutableClock(Instant.now());
    private final ListAppender<ILoggingEvent> logged = new ListAppender<>();
    private final Logger journalLog = (Logger) LoggerFactory.getLogger(PendingJournal.class);
    private String url;
    private JdbcAccountBook ledger;

    @BeforeEach
    void open() {
        url = TestDatabase.H2.newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, clock, 2, new GatewayId("gw-1"), EXPIRY);
        ledger.open(ACCOUNT);
        ledger.credit(ACCOUNT, START, "grant");
        logged.start();
        journalLog.addAppender(logged);
    }

    @AfterEach
    void close() {
        journalLog.detachAppender(logged);
        ledger.close();
    }

    @Test
    void aSettlementKept_isOneFsyncedLine_andTheFileGoesOnceEveryOneIsTaken() throws IOException {
        PendingJournal journal = PendingJournal.inDirectory(dataDir);
        Path file = dataDir.resolve(PendingJournal.FILE_NAME);
        assertThat(file).doesNotExist();
        PendingSettlement a = pending("req-a", 300);
        PendingSettlement b = pending("req-b", 200);
        journal.keep(a);
        journal.keep(b);
        assertThat(Files.readAllLines(file)).hasSize(2).allSatisfy(line -> assertThat(line).contains("\"op\":\"kept\""));

        journal.taken(a);
        assertThat(Files.readAllLines(file)).hasSize(3).last().asString().contains("\"op\":\"taken\"");
        journal.taken(a);   // again: nothing more
        assertThat(Files.readAllLines(file)).hasSize(3);
        journal.taken(b);
        assertThat(file).as("none left: nothing on disk").doesNotExist();
    }

    @Test
    void aFileOfAnEarlierRun_notReplayedYet_isNotDeletedWithThisRunsLast() throws IOException {
        PendingSettlement earlier = pending("req-earlier", 300);
        PendingJournal.inDirectory(dataDir).keep(earlier);
        PendingJournal unreplayed = PendingJournal.inDirectory(dataDir);
        PendingSettlement now = pending("req-now", 100);
        unreplayed.keep(now);
        unreplayed.taken(now);
        try (JdbcAccountBook restarted = restart()) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).as("the earlier one is still there")
                    .isEqualTo(new PendingJournal.Replayed(1, 300, 0));
        }
    }

    @Test
    void aRecord_readsBackAsItWasWritten() {
        PendingSettlement withChannel = new PendingSettlement("req-1", new Reservation(ACCOUNT, 7, 5_000),
                new RequestRecord("req-1", "worker-1", "ab".repeat(32), "synthetic", new TokenCounts(10, 2, 40, 5), 370, 120));
        PendingSettlement release = new PendingSettlement("req-2", new Reservation(ACCOUNT, 8, 900), null);
        PendingSettlement noWorker = new PendingSettlement("req-3", new Reservation(ACCOUNT, 9, 900),
                new RequestRecord("req-3", null, null, "m", new TokenCounts(1, 0, 0, 0), 3, 0));
        for (PendingSettlement p : List.of(withChannel, release, noWorker)) {
            assertThat(PendingJournal.decode(new io.vertx.core.json.JsonObject(PendingJournal.encode(p)))).isEqualTo(p);
        }
    }

    @Test
    void aStartReplaysWhatTheLastRunKept_chargingWhatTheClientsWereTold_thenTheRecoveryFindsNothing() throws IOException {
        PendingSettlement told = pending("req-told", 370);
        ledger.recordProgress(told.reservation(), 44);   // the last checkpoint: what the recovery would bill
        PendingSettlement released = new PendingSettlement("req-nothing", ledger.reserve(ACCOUNT, 500), null);
        PendingSettlement taken = pending("req-taken", 100);
        PendingJournal lastRun = PendingJournal.inDirectory(dataDir);
        lastRun.keep(told);
        lastRun.keep(released);
        lastRun.keep(taken);
        lastRun.taken(taken);
        taken.bill(ledger);

        try (JdbcAccountBook restarted = restart()) {
            PendingJournal.Replayed replayed = PendingJournal.inDirectory(dataDir).replay(restarted);
            assertThat(replayed).isEqualTo(new PendingJournal.Replayed(2, 370, 0));
            assertThat(restarted.recoverOpenReservations()).as("nothing left open for the recovery").isEmpty();
            assertThat(restarted.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, START - 470, 0, 470));
            assertThat(restarted.request(ACCOUNT, "req-told")).as("looked up as told")
                    .hasValueSatisfying(r -> assertThat(r.chargedNanoton()).isEqualTo(370));
        }
        assertThat(dataDir.resolve(PendingJournal.FILE_NAME)).doesNotExist();
    }

    @Test
    void aReplay_ofWhatTheLedgerTookUnseen_orOfAReplayCutShort_chargesNothingMore() throws IOException {
        PendingSettlement a = pending("req-a", 370);
        PendingSettlement b = pending("req-b", 80);
        PendingJournal lastRun = PendingJournal.inDirectory(dataDir);
        lastRun.keep(a);
        lastRun.keep(b);
        a.bill(ledger);   // the ledger took it; the stop came before its "taken" line
        Path file = dataDir.resolve(PendingJournal.FILE_NAME);
        byte[] kept = Files.readAllBytes(file);

        try (JdbcAccountBook restarted = restart()) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).isEqualTo(new PendingJournal.Replayed(2, 450, 0));
            // A start that crashed after its replay, before the file was gone: the next one replays it all again.
            Files.write(file, kept);
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).as("the first outcomes, returned again")
                    .isEqualTo(new PendingJournal.Replayed(2, 450, 0));
            assertThat(restarted.balance(ACCOUNT)).as("each charged once").isEqualTo(new AccountState(ACCOUNT, START - 450, 0, 450));
            assertThat(restarted.requests(ACCOUNT)).extracting(RequestRecord::requestId).containsExactly("req-a", "req-b");
        }
    }

    @Test
    void aReservationThatRecoveryEnded_isNotBilledAgain() throws IOException {
        PendingSettlement swept = pending("req-swept", 370);
        ledger.recordProgress(swept.reservation(), 44);
        PendingJournal.inDirectory(dataDir).keep(swept);
        // This gateway's lease expired during the outage and another gateway's sweep ended the reservation at its checkpoint.
        clock.advance(EXPIRY.plusSeconds(1));
        try (JdbcAccountBook other = JdbcAccountBook.open(url, clock, 1, new GatewayId("gw-2"), EXPIRY)) {
            assertThat(other.sweep()).singleElement().satisfies(s -> assertThat(s.settlement().chargedNanoton()).isEqualTo(44));
        }

        try (JdbcAccountBook restarted = restart()) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).isEqualTo(new PendingJournal.Replayed(0, 0, 1));
            assertThat(restarted.balance(ACCOUNT)).as("the checkpoint, once").isEqualTo(new AccountState(ACCOUNT, START - 44, 0, 44));
        }
        assertThat(warnings()).anySatisfy(w -> assertThat(w).contains("req-swept", "not billed the 370 nanoTON", "recovery"));
        assertThat(dataDir.resolve(PendingJournal.FILE_NAME)).doesNotExist();
    }

    @Test
    void aTornLastLine_isSkippedWithAWarning_andTheRestIsReplayed() throws IOException {
        PendingSettlement whole = pending("req-whole", 370);
        PendingSettlement torn = pending("req-torn", 90);
        ledger.recordProgress(torn.reservation(), 30);
        PendingJournal.inDirectory(dataDir).keep(whole);
        String tornLine = PendingJournal.encode(torn);
        Files.writeString(dataDir.resolve(PendingJournal.FILE_NAME), tornLine.substring(0, tornLine.length() / 2),
                StandardCharsets.UTF_8, StandardOpenOption.APPEND);

        try (JdbcAccountBook restarted = restart()) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).isEqualTo(new PendingJournal.Replayed(1, 370, 0));
            assertThat(restarted.recoverOpenReservations()).as("the torn one's client was never told: its checkpoint")
                    .singleElement().satisfies(s -> assertThat(s.settlement().chargedNanoton()).isEqualTo(30));
            assertThat(restarted.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, START - 400, 0, 400));
        }
        assertThat(warnings()).singleElement().asString().contains("torn last line");
    }

    /** Review R, R-9: a line whole but wrong says which field, not a NullPointerException's words. */
    @Test
    void aLineWithAFieldMissingOrOfTheWrongType_isSkipped_namingTheField() throws IOException {
        Path file = dataDir.resolve(PendingJournal.FILE_NAME);
        JsonObject missing = new JsonObject(PendingJournal.encode(pending("req-missing", 50)));
        missing.remove("amount_nanoton");
        JsonObject wrongType = new JsonObject(PendingJournal.encode(pending("req-wrong", 60))).put("account_id", 42);
        Files.writeString(file, missing.encode() + "\n" + wrongType.encode() + "\n");
        PendingJournal.inDirectory(dataDir).keep(pending("req-good", 70));
        try (JdbcAccountBook restarted = restart()) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).isEqualTo(new PendingJournal.Replayed(1, 70, 0));
        }
        assertThat(warnings()).hasSize(2);
        assertThat(warnings().get(0)).asString().contains("unreadable line 1", "'amount_nanoton' is missing");
        assertThat(warnings().get(1)).asString().contains("unreadable line 2", "'account_id' is not a string");
    }

    @Test
    void aLineAfterOneTornByAFailedWrite_startsALineOfItsOwn() throws IOException {
        Path file = dataDir.resolve(PendingJournal.FILE_NAME);
        Files.writeString(file, "{\"v\":1,\"op\":\"ke");
        PendingSettlement next = pending("req-next", 120);
        PendingJournal.inDirectory(dataDir).keep(next);
        try (JdbcAccountBook restarted = restart()) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).isEqualTo(new PendingJournal.Replayed(1, 120, 0));
        }
        assertThat(warnings()).singleElement().asString().contains("unreadable line 1");
    }

    @Test
    void aLedgerGoneDuringTheReplay_failsIt_andLeavesTheFileForTheNextStart() throws IOException {
        PendingSettlement a = pending("req-a", 370);
        PendingJournal.inDirectory(dataDir).keep(a);
        Path file = dataDir.resolve(PendingJournal.FILE_NAME);
        byte[] kept = Files.readAllBytes(file);
        AccountBook down = (AccountBook) java.lang.reflect.Proxy.newProxyInstance(AccountBook.class.getClassLoader(),
                new Class<?>[] {AccountBook.class}, (proxy, method, args) -> {
                    throw new LedgerUnavailableException(method.getName(), new SQLException("Connection refused", "08001"));
                });
        assertThatThrownBy(() -> PendingJournal.inDirectory(dataDir).replay(down)).isInstanceOf(LedgerUnavailableException.class);
        assertThat(file).hasBinaryContent(kept);
        try (JdbcAccountBook restarted = restart()) {
            assertThat(PendingJournal.inDirectory(dataDir).replay(restarted)).isEqualTo(new PendingJournal.Replayed(1, 370, 0));
        }
    }

    @Test
    void inMemory_keepsNothing_andReplaysNothing() throws IOException {
        PendingJournal memory = PendingJournal.inMemory();
        memory.keep(pending("req-a", 10));
        assertThat(memory.file()).isEmpty();
        assertThat(dataDir).isEmptyDirectory();
        assertThat(memory.replay(ledger)).isEqualTo(new PendingJournal.Replayed(0, 0, 0));
    }

    /** A reservation of 1,000 on the ledger, and its settlement at {@code cost}. */
    private PendingSettlement pending(String requestId, long cost) {
        Reservation reservation = ledger.reserve(ACCOUNT, 1_000);
        return new PendingSettlement(requestId, reservation, new RequestRecord(requestId, "worker-1", null, "synthetic",
                new TokenCounts(10, 0, 40, 0), cost, cost / 2));
    }

    /** The same gateway started again: its next lease epoch, on the same database. */
    private JdbcAccountBook restart() {
        return JdbcAccountBook.open(url, clock, 1, new GatewayId("gw-1"), EXPIRY);
    }

    private List<String> warnings() {
        return logged.list.stream().filter(e -> e.getLevel() == ch.qos.logback.classic.Level.WARN)
                .map(ILoggingEvent::getFormattedMessage).toList();
    }
}
