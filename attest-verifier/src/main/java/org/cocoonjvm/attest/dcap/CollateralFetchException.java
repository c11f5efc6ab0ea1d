package org.cocoonjvm.attest.dcap;

/** Collateral could not be obtained; {@link #code()} is stable, the message names URL and cause. */
public final class CollateralFetchException extends Exception {
  public enum Reason {
    /** The source has no collateral for the key (PCS/PCCS 404, or not in the bundle). */
    NOT_FOUND("collateral_not_found"),
    /** The server answered with another non-200 status. */
    HTTP_STATUS("collateral_http_status"),
    /** Connection, timeout or interruption. */
    UNAVAILABLE("collateral_unavailable"),
    /** A body or issuer-chain header does not parse. */
    MALFORMED("collateral_response_malformed");

    private final String code;

    Reason(String code) {
      this.code = code;
    }

    public String code() {
      return code;
    }
  }

  private final Reason reason;

  CollateralFetchException(Reason reason, String message, Throwable cause) {
    super(reason.code() + ": " + message, cause);
    this.reason = reason;
  }

  public Reason reason() {
    return reason;
  }

  public String code() {
    return reason.code();
  }
}
