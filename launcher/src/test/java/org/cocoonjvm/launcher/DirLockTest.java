package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A second {@code cocoon worker} on a payment dir another one holds (audit P, P-6), or a second
 * {@code cocoon gateway} on a data dir (review U, U-2), is refused before it reads any state.
 */
class DirLockTest {
    @TempDir
    Path dir;

    @Test
    void aWorkerOnAPaymentDirInUse_isRefusedInOneLine_andMayStartOnceItIsFree() throws Exception {
        Path paymentDir = dir.resolve("payments");
        try (DirLock first = DirLock.hold(paymentDir, DirLock.WORKER)) {
            CliRun second = CliRun.cocoon("worker", "--id", "w2", "--engine", "synthetic", "--port", "0",
                    "--payment-dir", paymentDir.toString());
            assertThat(second.exit()).isEqualTo(1);
            assertThat(second.err()).startsWith("cocoon: --payment-dir " + paymentDir + " is in use by another cocoon worker")
                    .doesNotContain("\tat ");
            assertThat(Files.exists(paymentDir.resolve("payment-key"))).as("it read and wrote nothing").isFalse();
        }
        try (DirLock again = DirLock.hold(paymentDir, DirLock.WORKER)) {
            assertThat(again).as("free once the first let go").isNotNull();
        }
    }

    @Test
    void aPaymentDirThatIsAFile_isRefused() throws Exception {
        Path file = Files.writeString(dir.resolve("not-a-dir"), "x");
        CliRun worker = CliRun.cocoon("worker", "--id", "w", "--engine", "synthetic", "--port", "0", "--payment-dir", file.toString());
        assertThat(worker.exit()).isEqualTo(1);
        assertThat(worker.err()).isEqualTo("cocoon: --payment-dir " + file + " is not a directory");
    }

    @Test
    void aGatewayOnADataDirInUse_isRefusedInOneLine_beforeItTouchesTheLedger() throws Exception {
        Path dataDir = dir.resolve("data");
        try (DirLock first = DirLock.hold(dataDir, DirLock.GATEWAY)) {
            CliRun second = CliRun.cocoon("gateway", "--port", "0", "--api-key", "sk-alice", "--admin-key", "admin-test",
                    "--data-dir", dataDir.toString());
            assertThat(second.exit()).isEqualTo(1);
            assertThat(second.err()).isEqualTo("cocoon: --data-dir " + dataDir + " is in use by another cocoon gateway (it holds "
                    + dataDir.resolve("gateway.lock") + "): two gateways on one data dir would overwrite each other's pending"
                    + " settlements, cordons and known models; let the one running there exit first, or give each gateway a"
                    + " --data-dir of its own");
            assertThat(Files.exists(dataDir.resolve("ledger.mv.db"))).as("no ledger opened").isFalse();
            assertThat(Files.exists(dataDir.resolve("wallet.key"))).as("nothing read or written").isFalse();
        }
    }

    /** What the ledger's lease records of a gateway's data dir: made once, the same at every start after. */
    @Test
    void aDataDirsId_isMadeOnce_andKept() throws Exception {
        Path dataDir = dir.resolve("data");
        String id;
        try (DirLock lock = DirLock.hold(dataDir, DirLock.GATEWAY)) {
            id = lock.id();
            assertThat(id).matches("[0-9a-f]{32}");
            assertThat(lock.id()).isEqualTo(id);
        }
        try (DirLock again = DirLock.hold(dataDir, DirLock.GATEWAY)) {
            assertThat(again.id()).isEqualTo(id);
        }
        try (DirLock other = DirLock.hold(dir.resolve("other"), DirLock.GATEWAY)) {
            assertThat(other.id()).isNotEqualTo(id);
        }
        try (var files = Files.list(dataDir)) {
            assertThat(files.map(f -> f.getFileName().toString())).containsExactlyInAnyOrder("gateway.lock", DirLock.ID_FILE);
        }
    }
}
