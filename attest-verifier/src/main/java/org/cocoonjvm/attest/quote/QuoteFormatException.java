package org.cocoonjvm.attest.quote;

import org.cocoonjvm.attest.CodedException;
import org.cocoonjvm.attest.ReasonCode;

/**
 * The quote bytes do not form a quote this parser accepts.
 *
 * <p>{@link #code()} is stable and meant for metrics, logs and error tables; the message is for
 * humans and names the field, its offset and the expected and actual values.
 */
public final class QuoteFormatException extends CodedException {

  /** Why a quote was rejected. The string codes are part of the module's contract. */
  public enum Reason implements ReasonCode {
    /** The input ends before a field that the layout or a declared length requires. */
    TRUNCATED,
    /** Header version is not 3 (SGX) or 4/5 (TDX), or does not fit the TEE type. */
    UNSUPPORTED_VERSION,
    /** Attestation key type other than 2 (ECDSA P-256). */
    UNSUPPORTED_KEY_TYPE,
    /** TEE type other than 0x00 (SGX) or 0x81 (TDX). */
    UNSUPPORTED_TEE_TYPE,
    /** v5 body type unknown or not matching the TEE type. */
    UNSUPPORTED_BODY_TYPE,
    /** Certification data type outside what the layout allows at that position. */
    UNSUPPORTED_CERT_TYPE,
    /** A declared length disagrees with the layout or with the lengths it contains. */
    BAD_LENGTH,
    /** QE vendor id is not Intel's. */
    BAD_QE_VENDOR;
  }

  private final String field;
  private final int offset;

  QuoteFormatException(Reason reason, String field, int offset, String detail) {
    super(reason, field + " at offset " + offset + ": " + detail, null);
    this.field = field;
    this.offset = offset;
  }

  public Reason reason() {
    return (Reason) reasonCode();
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
