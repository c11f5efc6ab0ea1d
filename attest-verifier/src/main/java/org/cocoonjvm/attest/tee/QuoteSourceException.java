package org.cocoonjvm.attest.tee;

/** A quote could not be produced; {@link #reason()} says which way it failed. */
public final class QuoteSourceException extends Exception {

  public enum Reason {
    /** report_data was not exactly 64 bytes. */
    BAD_REPORT_DATA,
    /** No configfs-tsm report directory: not a TDX guest, kernel older than 6.7, or configfs not mounted. */
    UNAVAILABLE,
    /** The provider is not {@code tdx_guest}. */
    WRONG_PROVIDER,
    /** The kernel reported EBUSY: another quote request is in flight. Retry later. */
    BUSY,
    /** The kernel rejected the input (EINVAL). */
    INVALID,
    /** generation did not advance by exactly one: another writer raced this request. */
    RACED,
    /** Any other I/O failure (EFBIG, host quote service timeout, …). */
    IO
  }

  private final Reason reason;

  public QuoteSourceException(Reason reason, String message) {
    super(reason + ": " + message);
    this.reason = reason;
  }

  public QuoteSourceException(Reason reason, String message, Throwable cause) {
    this(reason, message);
    initCause(cause);
  }

  public Reason reason() {
    return reason;
  }
}
