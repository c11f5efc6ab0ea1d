package org.cocoonjvm.attest;

import java.util.Locale;

/**
 * A failure reason with a stable machine-readable code for metrics, logs, error tables and JSON.
 * Implemented by the module's {@code Reason} enums.
 *
 * <p>The code is the constant's name in lower case ({@code ROOT_NOT_PINNED} → {@code
 * root_not_pinned}), so renaming a constant changes the module's contract; {@code
 * ReasonCodeTest} pins the published codes.
 */
public interface ReasonCode {

  /** Supplied by every enum constant. */
  String name();

  /** Stable machine-readable code, e.g. {@code quote_signature_invalid}. */
  default String code() {
    return name().toLowerCase(Locale.ROOT);
  }
}
