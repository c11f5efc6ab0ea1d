package org.cocoonjvm.billing.chain;

/**
 * A chain operation that did not happen: the node refused it, could not be reached, or answered
 * something this client does not understand. {@link #code()} is stable for logs and metrics.
 */
public class ChainException extends RuntimeException {
    private final String code;

    public ChainException(String code, String message) {
        super(message);
        this.code = code;
    }

    public ChainException(String code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public String code() {
        return code;
    }

    /** The node rejected an external message before the contract accepted it (nothing was paid). */
    public static final class Rejected extends ChainException {
        private final Integer exitCode;

        public Rejected(String message, Integer exitCode) {
            super("rejected", message);
            this.exitCode = exitCode;
        }

        /** The contract's exit code, when the node reported one. */
        public Integer exitCode() {
            return exitCode;
        }
    }
}
