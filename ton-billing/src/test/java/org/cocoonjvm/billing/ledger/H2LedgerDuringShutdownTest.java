package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A gateway settles the streams it lets finish after SIGTERM, from its own shutdown hook, on the
 * ledger. With H2's default DB_CLOSE_ON_EXIT, H2's hook closed the database at the same moment and
 * those settlements failed ("database closed"), billed later at their last checkpoint. A child JVM
 * exits (running the hooks, as SIGTERM does) and writes to its H2 file ledger from its own hook.
 */
class H2LedgerDuringShutdownTest {
    private static final String ACCOUNT = "shutdown";
    private static final long DURING_SHUTDOWN = 7_000;

    @Test
    void theLedgerStaysOpenForTheOwnersShutdownHook_andWhatItWroteThenIsKept() throws Exception {
        String url = H2Files.newDatabaseUrl();
        Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), Child.class.getName(), url)
                .redirectErrorStream(true).start();
        assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(output).as("the child's output").contains("credited during shutdown");

        try (JdbcAccountBook book = JdbcAccountBook.open(url, Clock.systemUTC(), 1)) {
            assertThat(book.balance(ACCOUNT).balanceNanoton()).isEqualTo(1 + DURING_SHUTDOWN);
        }
    }

    /** Opens the ledger, then exits; its shutdown hook writes once H2's own hook has had its turn, then closes it. */
    public static final class Child {
        private Child() {
        }

        public static void main(String[] args) throws IOException {
            JdbcAccountBook book = JdbcAccountBook.open(args[0], Clock.systemUTC(), 1);
            book.open(ACCOUNT);
            book.credit(ACCOUNT, 1, "before");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    Thread.sleep(500);  // hooks run at once, in no order: let H2's close first, if it would
                    book.credit(ACCOUNT, DURING_SHUTDOWN, "during-shutdown");
                    System.out.println("credited during shutdown");
                } catch (Exception e) {
                    System.out.println("failed during shutdown: " + e);
                } finally {
                    book.close();
                }
            }));
            System.exit(0);
        }
    }
}
