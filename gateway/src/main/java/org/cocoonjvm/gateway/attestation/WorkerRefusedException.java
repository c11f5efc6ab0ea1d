package org.cocoonjvm.gateway.attestation;

/** A worker's registration was refused for its attestation; the message says why, starting with a reason code. */
public final class WorkerRefusedException extends Exception {
    private final String code;

    public WorkerRefusedException(String code, String detail) {
        super(code + ": " + detail);
        this.code = code;
    }

    public String code() {
        return code;
    }
}
