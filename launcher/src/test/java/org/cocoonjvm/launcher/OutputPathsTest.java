package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Output paths written at the end of a long run: refused before it (exit 2), and a failure at the
 * end loses neither the run's exit code nor the text (audit P, P-2).
 */
class OutputPathsTest {
    private Path dir;

    @BeforeEach
    void makeDir() throws IOException {
        dir = Files.createTempDirectory("output-paths");
    }

    @AfterEach
    void removeDir() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    /** The write at the end fails (the folder went away): one line says so and where the text was kept instead. */
    @Test
    void aWriteThatFailsAtTheEnd_keepsTheTextInTheTempFolder_andSaysWhere() throws IOException {
        Path gone = dir.resolve("gone").resolve("summary.json");
        StringWriter err = new StringWriter();

        Path kept = OutputPaths.writeOrKeep("--json", gone, "{\"a\": 1}", new PrintWriter(err, true));

        try {
            assertThat(kept).isNotNull().isNotEqualTo(gone);
            assertThat(kept.getFileName().toString()).startsWith("summary-").endsWith(".json");
            assertThat(Files.readString(kept)).isEqualTo("{\"a\": 1}");
            assertThat(err.toString().strip()).isEqualTo("cocoon: --json " + gone + " could not be written (no such file or directory "
                    + gone + "); it is in " + kept + " instead");
        } finally {
            Files.deleteIfExists(kept);
        }
    }

    @Test
    void aWriteThatWorks_saysNothing() throws IOException {
        Path file = dir.resolve("summary.json");
        StringWriter err = new StringWriter();

        assertThat(OutputPaths.writeOrKeep("--json", file, "{}", new PrintWriter(err, true))).isEqualTo(file);
        assertThat(Files.readString(file)).isEqualTo("{}");
        assertThat(err.toString()).isEmpty();
    }

    /** {@code bench gateway --out} is made and tried before the benchmark's minutes, not after them. */
    @Test
    void benchGatewayOut_thatCannotBeMade_isExit2_beforeTheBench() throws IOException {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        StringWriter err = new StringWriter();
        var cli = Cocoon.commandLine();
        cli.setErr(new PrintWriter(err, true));

        long started = System.nanoTime();
        int exit = cli.execute("bench", "gateway", "--concurrency", "1", "--out", file.resolve("plots").toString());

        assertThat(exit).as(err.toString()).isEqualTo(2);
        assertThat(err.toString().strip()).isEqualTo("cocoon: --out " + file.resolve("plots") + " cannot be written: not a directory");
        assertThat(System.nanoTime() - started).as("refused before any warm-up").isLessThan(10_000_000_000L);

        Path made = dir.resolve("new").resolve("plots");
        OutputPaths.requireWritableDirectory("--out", made);
        try (Stream<Path> left = Files.list(made)) {
            assertThat(left).as("the trial file is removed").isEmpty();
        }
    }
}
