package org.cocoonjvm.attest.quote;

/**
 * The quote bytes do not form a quote this parser accepts.
 *
 * <p>{@link #code()} is stable and meant for metrics, logs and error tables; the message is for
 * humans and names the field, its offset and the expected and actual values.
 */
public final class QuoteFormatException extends Exception {

  /** Why a quote was rejected. The string codes are part of the module's contract. */
  public enum Reason {
    /** The input ends before a field that the layout or a declared length requires. */
    TRUNCATED("truncated"),
    /** Header version is not 3 (SGX) or 4/5 (TDX), or does not fit the TEE type. */
    UNSUPPORTED_VERSION("unsupported_version"),
    /** Attestation key type other than 2 (ECDSA P-256). */
    UNSUPPORTED_KEY_TYPE("unsupported_key_type"),
    /** TEE type other than 0x00 (SGX) or 0x81 (TDX). */
    UNSUPPORTED_TEE_TYPE("unsupported_tee_type"),
    /** v5 body type unknown or not matching the TEE type. */
    UNSUPPORTED_BODY_TYPE("unsupported_body_type"),
    /** Certification data type outside what the layout allows at that position. */
    UNSUPPORTED_CERT_TYPE("unsupported_cert_type"),
    /** A declared length disagrees with the layout or with the lengths it contains. */
    BAD_LENGTH("bad_length"),
    /** QE vendor id is not Intel's. */
    BAD_QE_VENDOR("bad_qe_vendor");

    private final String code;

    Reason(String code) {
      this.code = code;
    }

    public String code() {
      return code;
    }
  }

  private final Reason reason;
  private final String field;
  private final int offset;

  QuoteFormatException(Reason reason, String field, int offset, String detail) {
    super(reason.code() + ": " + field + " at offset " + offset + ": " + detail);
    this.reason = reason;
    this.field = field;
    this.offset = offset;
  }

  /** Stable machine-readable code, e.g. {@code truncated}, {@code unsupported_version}. */
  public String code() {
    return reason.code();
  }

  public Reason reason() {
    return reason;
  }

  /** The quote field that failed, e.g. {@code header.version}. */
  public String field() {
    return field;
  }

  /** Byte offset of that field in the quote. */
  public int offset() {
    return offset;
  }
}
