package org.cocoonjvm.attest.dcap;

import org.cocoonjvm.attest.CodedException;
import org.cocoonjvm.attest.ReasonCode;

/** Collateral could not be obtained; {@link #code()} is stable, the message names URL and cause. */
public final class CollateralFetchException extends CodedException {

  /** The only reasons whose codes are not their names in lower case, so they spell them out. */
  public enum Reason implements ReasonCode {
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

    @Override
    public String code() {
      return code;
    }
  }

  CollateralFetchException(Reason reason, String message, Throwable cause) {
    super(reason, message, cause);
  }

  public Reason reason() {
    return (Reason) reasonCode();
  }
}
