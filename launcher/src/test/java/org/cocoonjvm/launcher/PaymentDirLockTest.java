package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A second {@code cocoon worker} on a payment dir another one holds is refused before it reads any state (audit P, P-6). */
class PaymentDirLockTest {
    @TempDir
    Path dir;

    @Test
    void aWorkerOnAPaymentDirInUse_isRefusedInOneLine_andMayStartOnceItIsFree() throws Exception {
        Path paymentDir = dir.resolve("payments");
        try (PaymentDirLock first = PaymentDirLock.hold(paymentDir)) {
            CliRun second = CliRun.cocoon("worker", "--id", "w2", "--engine", "synthetic", "--port", "0",
                    "--payment-dir", paymentDir.toString());
            assertThat(second.exit()).isEqualTo(1);
            assertThat(second.err()).startsWith("cocoon: --payment-dir " + paymentDir + " is in use by another cocoon worker")
                    .doesNotContain("\tat ");
            assertThat(Files.exists(paymentDir.resolve("payment-key"))).as("it read and wrote nothing").isFalse();
        }
        try (PaymentDirLock again = PaymentDirLock.hold(paymentDir)) {
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
}
