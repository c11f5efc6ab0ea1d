package org.cocoonjvm.attest.dcap;

import java.security.cert.X509Certificate;
import java.util.HexFormat;
import java.util.Locale;

/**
 * What selects a collateral set: the TEE (TCB Info and QE Identity differ for TDX and SGX), the
 * platform's FMSPC, and which PCK CA issued its PCK certificate (selects the PCK CRL).
 *
 * @param fmspc 6 bytes as 12 lower-case hex digits
 */
public record CollateralKey(Tee tee, String fmspc, PckCa ca) {
  public enum Tee {
    TDX("tdx"),
    SGX("sgx");

    private final String path;

    Tee(String path) {
      this.path = path;
    }

    /** The PCS path segment: {@code /tdx/certification/v4/…} or {@code /sgx/…}. */
    public String path() {
      return path;
    }
  }

  public enum PckCa {
    PLATFORM("platform"),
    PROCESSOR("processor");

    private final String query;

    PckCa(String query) {
      this.query = query;
    }

    /** The PCS {@code ca=} value. */
    public String query() {
      return query;
    }

    /** From a PCK CA's subject: Intel names them "Intel SGX PCK Platform CA" / "… Processor CA". */
    public static PckCa ofIssuer(X509Certificate pckCa) {
      String subject = pckCa.getSubjectX500Principal().getName();
      if (subject.contains("Platform CA")) return PLATFORM;
      if (subject.contains("Processor CA")) return PROCESSOR;
      throw new IllegalArgumentException("not a PCK Platform or Processor CA: " + subject);
    }
  }

  public CollateralKey {
    fmspc = fmspc.toLowerCase(Locale.ROOT);
    if (fmspc.length() != 12 || HexFormat.of().parseHex(fmspc).length != 6) {
      throw new IllegalArgumentException("FMSPC must be 6 bytes of hex, got " + fmspc);
    }
  }

  /** The collateral a verified quote needs. */
  public static CollateralKey of(VerifiedSignatures sigs) throws VerificationException {
    return new CollateralKey(sigs.quote().isTdx() ? Tee.TDX : Tee.SGX, sigs.pckExtensions().fmspc(),
        PckCa.ofIssuer(sigs.pckIssuer()));
  }
}
