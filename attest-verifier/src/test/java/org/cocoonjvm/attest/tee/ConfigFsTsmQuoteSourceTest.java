package org.cocoonjvm.attest.tee;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.attest.tee.QuoteSourceException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Against a directory that imitates configfs-tsm. {@code outblob} is a FIFO: reading it blocks
 * until the imitation "kernel" thread opens it, and that thread, like the kernel, reads inblob,
 * bumps generation and then writes the quote.
 */
class ConfigFsTsmQuoteSourceTest {
  @TempDir Path root;

  private Path requesterDir(String provider) throws Exception {
    Path dir = root.resolve("cocoon-test");
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("provider"), provider + "\n");
    Files.writeString(dir.resolve("generation"), "7\n");
    Files.write(dir.resolve("inblob"), new byte[0]);
    return dir;
  }

  private static void mkfifo(Path p) throws Exception {
    Process proc;
    try {
      proc = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start();
    } catch (IOException e) {
      assumeTrue(false, "mkfifo not available: " + e);
      return;
    }
    assumeTrue(proc.waitFor() == 0, "mkfifo failed");
  }

  /** One request served the way the kernel does; {@code bump} = how much generation advances. */
  private static CompletableFuture<Void> kernel(Path dir, int bump) {
    return CompletableFuture.runAsync(() -> {
      try (OutputStream out = Files.newOutputStream(dir.resolve("outblob"))) {
        byte[] in = Files.readAllBytes(dir.resolve("inblob"));
        long gen = Long.parseLong(Files.readString(dir.resolve("generation")).strip());
        Files.writeString(dir.resolve("generation"), (gen + bump) + "\n");
        out.write("QUOTE:".getBytes());
        out.write(in);
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
  }

  @Test
  void writesExactly64BytesAndReadsTheQuote() throws Exception {
    Path dir = requesterDir("tdx_guest");
    mkfifo(dir.resolve("outblob"));
    ConfigFsTsmQuoteSource source = ConfigFsTsmQuoteSource.open(root, "cocoon-test");
    byte[] reportData = new byte[64];
    reportData[0] = 42;
    CompletableFuture<Void> k = kernel(dir, 1);
    byte[] quote = source.quote(reportData);
    k.get(10, TimeUnit.SECONDS);
    assertThat(Files.readAllBytes(dir.resolve("inblob"))).isEqualTo(reportData);
    assertThat(new String(quote, 0, 6)).isEqualTo("QUOTE:");
    assertThat(quote).hasSize(70);
    assertThat(source.describe()).contains("tdx_guest");
  }

  @Test
  void anotherWriterRacingIsDetected() throws Exception {
    Path dir = requesterDir("tdx_guest");
    mkfifo(dir.resolve("outblob"));
    ConfigFsTsmQuoteSource source = ConfigFsTsmQuoteSource.open(root, "cocoon-test");
    CompletableFuture<Void> k = kernel(dir, 2);
    assertThatThrownBy(() -> source.quote(new byte[64])).isInstanceOf(QuoteSourceException.class)
        .extracting(e -> ((QuoteSourceException) e).reason()).isEqualTo(Reason.RACED);
    k.get(10, TimeUnit.SECONDS);
  }

  @Test
  void absentRootWrongProviderAndBadLengthAreTyped() throws Exception {
    assertThatThrownBy(() -> ConfigFsTsmQuoteSource.open(root.resolve("missing"), "x"))
        .extracting(e -> ((QuoteSourceException) e).reason()).isEqualTo(Reason.UNAVAILABLE);
    requesterDir("sev_guest");
    assertThatThrownBy(() -> ConfigFsTsmQuoteSource.open(root, "cocoon-test"))
        .extracting(e -> ((QuoteSourceException) e).reason()).isEqualTo(Reason.WRONG_PROVIDER);
    Files.writeString(root.resolve("cocoon-test/provider"), "tdx_guest");
    ConfigFsTsmQuoteSource source = ConfigFsTsmQuoteSource.open(root, "cocoon-test");
    assertThatThrownBy(() -> source.quote(new byte[63]))
        .extracting(e -> ((QuoteSourceException) e).reason()).isEqualTo(Reason.BAD_REPORT_DATA);
    // No outblob at all: the provider lacks the attribute.
    assertThatThrownBy(() -> source.quote(new byte[64]))
        .extracting(e -> ((QuoteSourceException) e).reason()).isEqualTo(Reason.UNAVAILABLE);
  }

  @Test
  void kernelErrnosMapToReasons() {
    assertThat(ConfigFsTsmQuoteSource.classify(new FileSystemException("outblob", null, "Device or resource busy"), "q").reason())
        .isEqualTo(Reason.BUSY);
    assertThat(ConfigFsTsmQuoteSource.classify(new IOException("Invalid argument"), "q").reason()).isEqualTo(Reason.INVALID);
    assertThat(ConfigFsTsmQuoteSource.classify(new IOException("File too large"), "q").reason()).isEqualTo(Reason.IO);
  }
}
