package org.cocoonjvm.attest.quote;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Finds and reads the shared attestation fixtures: the one place that knows where they are. Where
 * the checkout lacks them, a test that reads them is skipped, not failed: {@link #dir()} is an
 * assumption, and {@link NeedsFixtures} skips what reads them from set-up or through code that wraps
 * what it throws.
 */
public final class Fixtures {
  /** Tests run in the module directory; the fixtures sit beside the repository or inside it. */
  private static final List<Path> CANDIDATES =
      List.of(Path.of("../../shared/attestation-fixtures"), Path.of("../shared/attestation-fixtures"));

  private Fixtures() {}

  public static Path dir() {
    Optional<Path> dir = find();
    assumeTrue(dir.isPresent(), Fixtures::missing);
    return dir.orElseThrow();
  }

  /** Raw quote bytes; hex text files (optionally 0x-prefixed) are decoded. */
  public static byte[] quote(String relative) {
    try {
      byte[] raw = Files.readAllBytes(dir().resolve(relative));
      if (relative.endsWith(".hex") || relative.endsWith("_hex.txt")) {
        String text = new String(raw, StandardCharsets.US_ASCII).strip();
        if (text.startsWith("0x")) text = text.substring(2);
        return HexFormat.of().parseHex(text);
      }
      return raw;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Optional<Path> find() {
    return CANDIDATES.stream().filter(Files::isDirectory).findFirst();
  }

  private static String missing() {
    return "attestation fixtures not found (looked for " + CANDIDATES.stream().map(p -> p.toAbsolutePath().normalize())
        .toList() + "); skipping the tests that need them";
  }

  /** {@link NeedsFixtures}'s condition. */
  public static final class Present implements ExecutionCondition {
    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
      return find().isPresent() ? ConditionEvaluationResult.enabled("attestation fixtures found")
          : ConditionEvaluationResult.disabled(missing());
    }
  }
}
