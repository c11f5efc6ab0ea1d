package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.vertx.core.json.JsonObject;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;

/**
 * Runs {@code cocoon attest <subcommand> --json} in-process against the shared attestation
 * fixtures. Tests that need the fixtures skip (JUnit assumption) when the checkout has none.
 */
final class AttestCli {
    private static final Path FIXTURES = findFixtures();

    private AttestCli() {}

    /** Exit code, the parsed JSON on stdout (null when there was none) and the raw text for messages. */
    record Run(int exit, JsonObject json, String raw) {}

    static Run run(String subcommand, String... args) {
        assumeFixtures();
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new Cocoon());
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(new StringWriter()));
        List<String> all = new ArrayList<>(List.of("attest", subcommand, "--json"));
        all.addAll(List.of(args));
        int exit = cli.execute(all.toArray(String[]::new));
        String raw = out.toString().strip();
        return new Run(exit, raw.isEmpty() ? null : new JsonObject(raw), raw);
    }

    /** Absolute path of a file under shared/attestation-fixtures. */
    static String fixture(String relative) {
        assumeFixtures();
        return FIXTURES.resolve(relative).toString();
    }

    static void assumeFixtures() {
        assumeTrue(FIXTURES != null, "shared/attestation-fixtures not found");
    }

    /** The command refused the input (exit 1) with {@code code} as its error. */
    static void assertRejected(Run r, String code) {
        assertThat(r.exit()).as(r.raw()).isEqualTo(1);
        assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo(code);
    }

    // Maven runs tests from the module directory; an IDE may run them from the repository root.
    private static Path findFixtures() {
        for (String candidate : List.of("../../shared/attestation-fixtures", "../shared/attestation-fixtures")) {
            Path p = Path.of(candidate).toAbsolutePath().normalize();
            if (Files.isDirectory(p)) return p;
        }
        return null;
    }
}
