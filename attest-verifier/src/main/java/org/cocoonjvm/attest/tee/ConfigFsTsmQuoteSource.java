package org.cocoonjvm.attest.tee;

import static org.cocoonjvm.attest.tee.QuoteSourceException.Reason.BAD_REPORT_DATA;
import static org.cocoonjvm.attest.tee.QuoteSourceException.Reason.BUSY;
import static org.cocoonjvm.attest.tee.QuoteSourceException.Reason.INVALID;
import static org.cocoonjvm.attest.tee.QuoteSourceException.Reason.IO;
import static org.cocoonjvm.attest.tee.QuoteSourceException.Reason.RACED;
import static org.cocoonjvm.attest.tee.QuoteSourceException.Reason.UNAVAILABLE;
import static org.cocoonjvm.attest.tee.QuoteSourceException.Reason.WRONG_PROVIDER;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;

/**
 * Quotes from the Linux configfs-tsm interface (kernel ≥ 6.7, reference §6): one report directory
 * per requester under {@code /sys/kernel/config/tsm/report}, provider {@code tdx_guest}; write
 * exactly 64 bytes to {@code inblob}, read the quote from {@code outblob}, and check that
 * {@code generation} advanced by exactly one, which proves no other writer used the directory in
 * between. Calls on one instance are serialized; the kernel handles one quote at a time anyway.
 */
public final class ConfigFsTsmQuoteSource implements QuoteSource {
  public static final Path DEFAULT_ROOT = Path.of("/sys/kernel/config/tsm/report");
  static final String PROVIDER = "tdx_guest";

  private final Path dir;

  private ConfigFsTsmQuoteSource(Path dir) {
    this.dir = dir;
  }

  /**
   * Creates (or reuses) the report directory {@code root/requester} and checks its provider.
   *
   * @param root {@link #DEFAULT_ROOT} on a TDX guest; tests pass a directory that imitates it
   * @param requester a name unique to this process, e.g. {@code cocoon-worker}
   */
  public static ConfigFsTsmQuoteSource open(Path root, String requester) throws QuoteSourceException {
    if (requester.isEmpty() || requester.contains("/") || requester.startsWith(".")) {
      throw new IllegalArgumentException("requester must be a plain directory name, got '" + requester + "'");
    }
    if (!Files.isDirectory(root)) {
      throw new QuoteSourceException(UNAVAILABLE, root + " does not exist: not a TDX guest, kernel older than 6.7, "
          + "or configfs not mounted (mount -t configfs none /sys/kernel/config)");
    }
    Path dir = root.resolve(requester);
    try {
      Files.createDirectories(dir);
      String provider = Files.readString(dir.resolve("provider"), StandardCharsets.US_ASCII).strip();
      if (!provider.equals(PROVIDER)) {
        throw new QuoteSourceException(WRONG_PROVIDER, "provider of " + dir + " is '" + provider + "', expected " + PROVIDER);
      }
    } catch (IOException e) {
      throw classify(e, "opening " + dir);
    }
    return new ConfigFsTsmQuoteSource(dir);
  }

  @Override
  public synchronized byte[] quote(byte[] reportData) throws QuoteSourceException {
    if (reportData == null || reportData.length != REPORT_DATA_SIZE) {
      throw new QuoteSourceException(BAD_REPORT_DATA,
          "report_data must be exactly 64 bytes, got " + (reportData == null ? "null" : reportData.length));
    }
    try {
      long before = generation();
      // One write of all 64 bytes: the kernel rejects any other length with EINVAL.
      Files.write(dir.resolve("inblob"), reportData, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
      byte[] quote = Files.readAllBytes(dir.resolve("outblob"));
      long after = generation();
      if (after != before + 1) {
        throw new QuoteSourceException(RACED, "generation went from " + before + " to " + after
            + ": another writer used " + dir + "; the quote may not carry this report_data");
      }
      if (quote.length == 0) throw new QuoteSourceException(IO, "outblob of " + dir + " is empty");
      return quote;
    } catch (IOException e) {
      throw classify(e, "quote via " + dir);
    }
  }

  private long generation() throws IOException {
    String text = Files.readString(dir.resolve("generation"), StandardCharsets.US_ASCII).strip();
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new IOException("generation is not a number: '" + text + "'", e);
    }
  }

  /** errno arrives only as strerror text in the exception message. */
  static QuoteSourceException classify(IOException e, String what) {
    String msg = e instanceof FileSystemException fse && fse.getReason() != null ? fse.getReason() : String.valueOf(e.getMessage());
    String lower = msg.toLowerCase(Locale.ROOT);
    if (e instanceof NoSuchFileException) {
      return new QuoteSourceException(UNAVAILABLE, what + ": " + e.getMessage() + " missing (no tdx_guest TSM provider?)", e);
    }
    if (lower.contains("device or resource busy")) {
      return new QuoteSourceException(BUSY, what + ": EBUSY, another quote request is in flight; retry", e);
    }
    if (lower.contains("invalid argument")) {
      return new QuoteSourceException(INVALID, what + ": EINVAL, the kernel rejected the request", e);
    }
    return new QuoteSourceException(IO, what + ": " + e, e);
  }

  @Override
  public String describe() {
    return "configfs-tsm " + PROVIDER + " at " + dir;
  }
}
