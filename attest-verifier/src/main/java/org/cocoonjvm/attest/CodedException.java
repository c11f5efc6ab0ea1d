package org.cocoonjvm.attest;

/**
 * A checked failure that carries a {@link ReasonCode}: {@link #code()} is stable, the message
 * ({@code code: detail}) is for humans. Each subclass keeps its own {@code Reason} enum so callers
 * catch and switch on distinct types.
 */
public abstract class CodedException extends Exception {

  private final ReasonCode reason;

  protected CodedException(ReasonCode reason, String detail, Throwable cause) {
    super(reason.code() + ": " + detail, cause);
    this.reason = reason;
  }

  /** Stable machine-readable code, e.g. {@code truncated}, {@code quote_signature_invalid}. */
  public final String code() {
    return reason.code();
  }

  /** The reason as the subclass's own enum type narrows it. */
  protected final ReasonCode reasonCode() {
    return reason;
  }
}
