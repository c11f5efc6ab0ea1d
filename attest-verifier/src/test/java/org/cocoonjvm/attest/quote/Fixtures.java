package org.cocoonjvm.attest.quote;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;

/** Reads the shared attestation fixtures; tests are skipped where the checkout lacks them. */
public final class Fixtures {
  private Fixtures() {}

  /** Tests run in the module directory; the fixtures sit beside the repository or inside it. */
  public static Path dir() {
    for (String candidate :
        new String[] {"../../shared/attestation-fixtures", "../shared/attestation-fixtures"}) {
      Path p = Path.of(candidate);
      if (Files.isDirectory(p)) return p;
    }
    assumeTrue(false, "shared/attestation-fixtures not found; skipping fixture tests");
    throw new AssertionError("unreachable");
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
}
