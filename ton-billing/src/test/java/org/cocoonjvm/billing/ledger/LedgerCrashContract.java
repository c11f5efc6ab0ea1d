package org.cocoonjvm.billing.ledger;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.AccountState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A real crash: a child JVM ({@link CrashingLedgerClient}) runs reserve / progress / settle on the
 * ledger from several threads and is killed with SIGKILL at a random moment, several times over
 * the same database. After each kill the ledger is reopened and recovered, and checked against
 * what the child was told:
 * <ul>
 *   <li>an acknowledged settlement is in the ledger exactly as acknowledged (billed once);</li>
 *   <li>a reservation whose end was not acknowledged is charged at least its last acknowledged
 *       progress and no more than the child ever asked for;</li>
 *   <li>every reservation has ended, and each account's totals equal the rows behind them:
 *       {@code spent == sum of charges}, {@code balance + reserved + spent == deposits}.</li>
 * </ul>
 */
abstract class LedgerCrashContract {
    private static final int KILLS = 4;
    private static final String ACCOUNT = "crash";

    /** The child's billing threads: on PostgreSQL each has its own transaction open at most moments. */
    private static final int CHILD_THREADS = 4;

    protected abstract TestDatabase database();

    @TempDir
    Path tmp;

    @Test
    void sigkillAtRandomMoments_losesNoAcknowledgedUsageAndBillsNothingTwice() throws Exception {
        String url = database().newDatabaseUrl();
        Path log = tmp.resolve("acks.log");
        SplittableRandom random = new SplittableRandom(42);
        long totalAcks = 0;
        for (int kill = 0; kill < KILLS; kill++) {
            Process child = new ProcessBuilder(javaBinary(), "-cp", System.getProperty("java.class.path"),
                    CrashingLedgerClient.class.getName(), url, ACCOUNT, Integer.toString(kill), log.toString(),
                    Integer.toString(CHILD_THREADS))
                    .redirectErrorStream(true).start();
            BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            String first = out.readLine();
            while (first != null && first.startsWith("SLF4J")) {
                first = out.readLine();   // this module's tests have no logging backend, which SLF4J says first
            }
            assertThat(first).as("the child starts (its output: %s)", first).isEqualTo("ready");
            long before = Files.exists(log) ? Files.readAllLines(log).size() : 0;
            Thread.sleep(300 + random.nextInt(1_200));
            child.destroyForcibly();   // SIGKILL on Linux: no shutdown hooks, no flush, no rollback
            assertThat(child.waitFor(30, TimeUnit.SECONDS)).isTrue();
            long acks = Files.readAllLines(log).size() - before;
            assertThat(acks).as("the child got some work done before kill %d", kill).isPositive();
            totalAcks += acks;

            try (JdbcAccountBook book = JdbcAccountBook.open(url, Clock.systemUTC(), 2)) {
                book.recoverOpenReservations();
                check(url, Files.readAllLines(log), book.balance(ACCOUNT));
                assertThat(book.recoverOpenReservations()).as("nothing left to recover").isEmpty();
            }
        }
        assertThat(totalAcks).isGreaterThan(KILLS * 10L);
    }

    private static void check(String url, List<String> acks, AccountState totals) throws Exception {
        Map<Long, Long> ackedSettle = new HashMap<>();
        Map<Long, Long> ackedProgress = new HashMap<>();
        Map<Long, Long> mostAsked = new HashMap<>();
        Set<Long> ackedRelease = new HashSet<>();
        long ackedCredits = 0;
        for (String line : acks) {
            String[] f = line.split(" ");
            switch (f[0]) {
                case "C" -> ackedCredits += Long.parseLong(f[2]);
                case "P" -> {
                    ackedProgress.merge(Long.parseLong(f[1]), Long.parseLong(f[2]), Math::max);
                    mostAsked.merge(Long.parseLong(f[1]), Long.parseLong(f[2]), Math::max);
                }
                case "I" -> mostAsked.merge(Long.parseLong(f[1]), Long.parseLong(f[2]), Math::max);
                case "S" -> ackedSettle.put(Long.parseLong(f[1]), Long.parseLong(f[2]));
                case "X" -> ackedRelease.add(Long.parseLong(f[1]));
                default -> {
                    // a line cut by the kill: its call was not acknowledged
                }
            }
        }
        long charges = 0;
        long deposits;
        try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
            try (ResultSet rs = st.executeQuery("SELECT reservation_id, state, charged_nanoton FROM reservations")) {
                while (rs.next()) {
                    long id = rs.getLong(1);
                    long charged = rs.getLong(3);
                    assertThat(rs.getString(2)).as("reservation %d ended", id).isNotEqualTo("open");
                    charges += charged;
                    if (ackedSettle.containsKey(id)) {
                        assertThat(charged).as("acknowledged settlement of %d", id).isEqualTo(ackedSettle.get(id));
                    } else {
                        assertThat(charged).as("reservation %d: at least its acknowledged progress", id)
                                .isGreaterThanOrEqualTo(ackedProgress.getOrDefault(id, 0L))
                                .isLessThanOrEqualTo(mostAsked.getOrDefault(id, 0L));
                    }
                    if (ackedRelease.contains(id)) {
                        assertThat(charged).isEqualTo(ackedProgress.getOrDefault(id, 0L));
                    }
                }
            }
            try (ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(amount_nanoton), 0) FROM credits")) {
                rs.next();
                deposits = rs.getLong(1);
            }
        }
        assertThat(deposits).as("every acknowledged deposit is there").isGreaterThanOrEqualTo(ackedCredits);
        assertThat(totals.reservedNanoton()).isZero();
        assertThat(totals.spentNanoton()).as("spent == sum of charges: nothing billed twice").isEqualTo(charges);
        assertThat(totals.balanceNanoton() + totals.reservedNanoton() + totals.spentNanoton()).isEqualTo(deposits);
    }

    private static String javaBinary() {
        return Paths.get(System.getProperty("java.home"), "bin", "java").toString();
    }
}
