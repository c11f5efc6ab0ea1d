package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.ledger.LeaseHeldException;
import org.cocoonjvm.billing.ledger.LeaseStart;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.billing.PendingJournal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * What a gateway's ledger close, or a start that fails after taking the lease, leaves of it: kept
 * (and recorded so) when settlements a peer must not sweep may be waiting for the next start in the
 * journal, or may yet land there; released otherwise.
 */
class GatewayLeaseAtCloseTest {
    @TempDir
    Path dir;

    /**
     * Review U, U-3: such a start closed the ledger, which released the lease, and a peer's sweep
     * then ended the kept reservations at their checkpoints before any start could bill them as
     * their clients were told. The lease is kept now, and recorded so: the next start without that
     * data dir is refused at once, in one line that says why and what to do.
     */
    @Test
    void aJournalThatCannotBeRead_failsTheStart_andKeepsTheLease() throws Exception {
        String url = "jdbc:h2:file:" + dir.resolve("ledger");
        Path data = dir.resolve("data");
        // Unreadable as a file (EISDIR): stands for a journal the start cannot read (EIO, EACCES as non-root).
        Files.createDirectories(data.resolve(PendingJournal.FILE_NAME));

        assertThatThrownBy(() -> start(url, PendingJournal.inDirectory(data), "data-dir-1"))
                .isInstanceOf(Cocoon.StartFailure.class)
                .hasMessageContaining("they stay there for the next start");

        // This JVM was the holder, so even an embedded H2 file cannot call it gone.
        assertThatThrownBy(() -> JdbcAccountBook.open(url, Clock.systemUTC(), 2, new GatewayId("gwA"), Duration.ofSeconds(900),
                false)).as("not released").isInstanceOfSatisfying(LeaseHeldException.class,
                        e -> assertThat(e.keptAt()).as("recorded as kept").isNotNull());
        assertThatThrownBy(() -> start(url, PendingJournal.inMemory(), "data-dir-2"))
                .isInstanceOf(Cocoon.StartFailure.class)
                .hasMessageStartingWith("--gateway-id gwA is in use: pid " + ProcessHandle.current().pid() + " on ")
                .hasMessageContaining("left its lease to expire", "for the settlements it kept for its next start in its "
                        + "--data-dir. Start this gateway with that --data-dir", "or pass --take-over")
                .hasMessageNotContaining("may be stuck");
    }

    /**
     * Review U, U-5: a gateway whose node could not be built (here, a models.json that does not
     * read) failed after it had taken the lease and recovered, and left the ledger open: the lease
     * renewed by nobody, held up the next start elsewhere for its expiry. It is released now, and
     * the data dir is free again.
     */
    @Test
    void aGatewayThatCannotBeBuilt_releasesTheLeaseItTook_andItsDataDir() throws Exception {
        String url = "jdbc:h2:file:" + dir.resolve("ledger");
        Path data = Files.createDirectories(dir.resolve("data"));
        Files.writeString(data.resolve("models.json"), "{\"models\": [");

        CliRun gateway = CliRun.cocoon("gateway", "--port", "0", "--api-key", "sk-alice", "--admin-key", "admin-test",
                "--ledger", url, "--gateway-id", "gwA", "--data-dir", data.toString());

        assertThat(gateway.exit()).isEqualTo(1);
        assertThat(gateway.err()).startsWith("cocoon: the known models in " + data.resolve("models.json") + " do not read");
        try (JdbcAccountBook next = JdbcAccountBook.open(url, Clock.systemUTC(), 2, new GatewayId("gwA"),
                Duration.ofSeconds(900), false)) {
            assertThat(next.leaseStart().how()).isEqualTo(LeaseStart.How.RELEASED);
        }
        DirLock.hold(data, DirLock.GATEWAY).close();
    }

    /**
     * Review U, N-1: the keep was decided before the ledger's threads were awaited, and a settlement
     * still running on them could fail into the journal after the count. Decided after them now, and
     * threads still busy when the wait ends keep the lease as well.
     */
    @Test
    void aLedgerCloseWhoseThreadsAreStillBusy_keepsTheLease() throws Exception {
        String url = "jdbc:h2:file:" + dir.resolve("ledger");
        CountDownLatch release = new CountDownLatch(1);
        GatewayLedger.Billing billing = billing(url, PendingJournal.inMemory(), "data-dir-1");
        try {
            billing.ledgerThreads().execute(() -> {
                try {
                    release.await(30, TimeUnit.SECONDS);   // stands for a settlement the database is slow to take
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            billing.ledger().close();
        } finally {
            release.countDown();
        }
        assertThatThrownBy(() -> JdbcAccountBook.open(url, Clock.systemUTC(), 2, new GatewayId("gwA"), Duration.ofSeconds(900),
                false)).isInstanceOfSatisfying(LeaseHeldException.class, e -> assertThat(e.keptAt()).isNotNull());
    }

    @Test
    void aLedgerCloseWithNothingKept_releasesTheLease() throws Exception {
        String url = "jdbc:h2:file:" + dir.resolve("ledger");
        start(url, PendingJournal.inMemory(), "data-dir-1");
        try (JdbcAccountBook next = JdbcAccountBook.open(url, Clock.systemUTC(), 2, new GatewayId("gwA"),
                Duration.ofSeconds(900), false)) {
            assertThat(next.leaseStart().how()).isEqualTo(LeaseStart.How.RELEASED);
        }
    }

    private static void start(String url, PendingJournal pending, String dataDirId) throws Exception {
        billing(url, pending, dataDirId).ledger().close();
    }

    private static GatewayLedger.Billing billing(String url, PendingJournal pending, String dataDirId) throws Exception {
        GatewayPolicy policy = new GatewayPolicy();
        new CommandLine(policy).parseArgs("--gateway-id", "gwA");
        GatewayOptions options = policy.options("127.0.0.1", 0, List.of("sk-alice"), "admin-test", false, null);
        try (Ports ports = Ports.hold("127.0.0.1", 0)) {
            return policy.billing(ports, options, new GatewayPolicy.Funding(null, 0), url, pending, dataDirId);
        }
    }
}
