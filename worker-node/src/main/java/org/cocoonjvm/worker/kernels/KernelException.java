package org.cocoonjvm.worker.kernels;

/** A kernel library call failed; {@link #status()} is its {@code ck_status}. */
public final class KernelException extends RuntimeException {
    public static final int INVALID = -1;
    public static final int NOMEM = -2;
    public static final int UNSUPPORTED = -3;
    public static final int CAPACITY = -4;
    public static final int BACKEND = -5;
    public static final int STATE = -6;

    private final int status;

    KernelException(String call, int status, String detail) {
        super(call + " failed (" + name(status) + "): " + detail);
        this.status = status;
    }

    public int status() {
        return status;
    }

    static String name(int status) {
        return switch (status) {
            case INVALID -> "CK_E_INVALID";
            case NOMEM -> "CK_E_NOMEM";
            case UNSUPPORTED -> "CK_E_UNSUPPORTED";
            case CAPACITY -> "CK_E_CAPACITY";
            case BACKEND -> "CK_E_BACKEND";
            case STATE -> "CK_E_STATE";
            default -> "status " + status;
        };
    }
}
