package org.cocoonjvm.billing.ledger;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

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
                dir.toFile().deleteOnExit();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return "jdbc:h2:file:" + dir.resolve("ledger-" + NEXT.incrementAndGet());
    }
}
