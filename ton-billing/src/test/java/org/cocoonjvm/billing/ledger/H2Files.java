package org.cocoonjvm.billing.ledger;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/** H2 databases as files under one temp dir per test JVM, as the gateway runs it (file mode). */
final class H2Files {
    private static final AtomicInteger NEXT = new AtomicInteger();
    private static Path dir;

    private H2Files() {
    }

    static synchronized String newDatabaseUrl() {
        try {
            if (dir == null) {
                dir = Files.createTempDirectory("cocoon-ledger-h2");
                Path created = dir;
                Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(created)));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return "jdbc:h2:file:" + dir.resolve("ledger-" + NEXT.incrementAndGet());
    }

    private static void delete(Path root) {
        try (Stream<Path> files = Files.walk(root)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort, in the temp dir
        }
    }
}
