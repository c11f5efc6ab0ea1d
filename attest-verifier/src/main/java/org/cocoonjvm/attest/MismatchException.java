package org.cocoonjvm.attest;

/**
 * A verification step found a value other than the one it required. {@link #expected()} and
 * {@link #actual()} carry the two (hex, a time, a subject) so error tables need not parse the
 * message.
 */
public abstract class MismatchException extends CodedException {

  private final String expected;
  private final String actual;

  protected MismatchException(
      ReasonCode reason, String detail, String expected, String actual, Throwable cause) {
    super(reason, detail + " (expected " + expected + ", actual " + actual + ")", cause);
    this.expected = expected;
    this.actual = actual;
  }

  public final String expected() {
    return expected;
  }

  public final String actual() {
    return actual;
  }
}
