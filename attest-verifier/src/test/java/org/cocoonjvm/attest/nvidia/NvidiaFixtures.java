package org.cocoonjvm.attest.nvidia;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.cocoonjvm.attest.quote.Fixtures;

/** The NVIDIA part of the shared attestation fixtures (tests skip where they are absent). */
final class NvidiaFixtures {
  static final HexFormat HEX = HexFormat.of();

  /** Device chains are valid 2022-03-01 → 9999; the 2023 RIM signers 2023-06-27 → 2025-06-22. */
  static final Instant LEGACY_NOW = Instant.parse("2024-06-01T00:00:00Z");

  static final String LEGACY_NONCE = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e";
  static final String SAMPLE_2025_NONCE = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
  static final String COCO_NONCE = "87d8e24ab336adafe228d49e83d745f6dba4ae505372b6a5704820856b343fec";
  static final String PPCIE_NONCE = "4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e";

  private NvidiaFixtures() {}

  static Path path(String relative) {
    return Fixtures.dir().resolve(relative);
  }

  static byte[] bytes(String relative) {
    try {
      return Files.readAllBytes(path(relative));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** nvtrust / trustee evidence files are one line of hex. */
  static byte[] hexEvidence(String relative) {
    return HEX.parseHex(new String(bytes(relative), StandardCharsets.US_ASCII).strip());
  }

  static String text(String relative) {
    return new String(bytes(relative), StandardCharsets.UTF_8);
  }

  static Clock clockAt(Instant now) {
    return Clock.fixed(now, ZoneOffset.UTC);
  }

  static Clock clockAt(String now) {
    return clockAt(Instant.parse(now));
  }

  /** One PPCIe entry: evidence and PEM chain, both base64 in the JSON. */
  record PpcieEntry(String arch, byte[] evidence, byte[] chainPem) {}

  /** The GPU entries of a PPCIe evidence file; the values are plain base64 strings, so a regex suffices. */
  static List<PpcieEntry> ppcie(String relative) {
    String json = text(relative);
    Pattern entry = Pattern.compile("\\{[^{}]*}");
    List<PpcieEntry> out = new ArrayList<>();
    Matcher m = entry.matcher(json);
    while (m.find()) {
      String e = m.group();
      out.add(new PpcieEntry(field(e, "arch"), Base64.getDecoder().decode(field(e, "evidence")),
          Base64.getDecoder().decode(field(e, "certificate"))));
    }
    return out;
  }

  private static String field(String object, String name) {
    Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"([^\"]*)\"").matcher(object);
    if (!m.find()) throw new IllegalArgumentException("no " + name + " in " + object);
    return m.group(1);
  }
}
