package org.cocoonjvm.billing.channel;

/**
 * Why a signed semi-channel state was refused. {@link #reason()} is what callers branch on; its
 * {@link Reason#code()} is stable and goes into logs and errors; the message carries the values.
 */
public final class VoucherException extends RuntimeException {
    public enum Reason {
        /** Not a BOC of one {@code SignedSemiChannel} cell, or not in its canonical encoding. */
        MALFORMED("malformed"),
        /** The signature does not verify with the expected key. */
        BAD_SIGNATURE("bad_signature"),
        /** Signed for another channel. */
        WRONG_CHANNEL("wrong_channel"),
        /** The seqno is not above the last accepted one: a replay or a reordering. */
        SEQNO_NOT_INCREASING("seqno_not_increasing"),
        /** The cumulative amount went down. */
        SENT_DECREASING("sent_decreasing"),
        /** More than the channel's deposit can pay out. */
        ABOVE_DEPOSIT("above_deposit");

        private final String code;

        Reason(String code) {
            this.code = code;
        }

        public String code() {
            return code;
        }
    }

    private final Reason reason;

    public VoucherException(Reason reason, String message) {
        // A refusal is an expected outcome on the payment path: no stack trace to fill.
        super(reason.code() + ": " + message, null, false, false);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
