package org.cocoonjvm.gateway.registry;

import io.vertx.grpc.common.GrpcStatus;

/**
 * A worker may not register: its attestation, its Hello, its payment key or payout address, or a
 * worker id another worker holds. The session ends with {@link #status()} and the status message
 * {@code <code>: <message>}, so the worker's log says why; the refusal is listed under
 * {@code refused} in {@code /admin/workers}.
 */
public final class WorkerRefusedException extends Exception {
    /**
     * Its attestation did not pass the worker policy at Hello (the policy's own codes, e.g. {@code model_not_allowed}).
     *
     * @param tee       what its quote says it runs in, for {@code refused}; null when unknown
     * @param imageHash its image, for {@code refused}; null when unknown
     */
    public static WorkerRefusedException attestation(String code, String detail, String tee, String imageHash) {
        return new WorkerRefusedException(GrpcStatus.PERMISSION_DENIED, code, detail, tee, imageHash);
    }

    /** Something in its Hello this gateway cannot take: a retry with the same Hello fails the same way. */
    public static WorkerRefusedException invalid(String code, String detail) {
        return new WorkerRefusedException(GrpcStatus.INVALID_ARGUMENT, code, detail);
    }

    private final GrpcStatus status;
    private final String code;
    private final String tee;
    private final String imageHash;

    /**
     * @param code   stable, snake_case: what {@code refused} shows as {@code reason}
     * @param detail for people, naming the values at fault; the code is not repeated in it
     */
    public WorkerRefusedException(GrpcStatus status, String code, String detail) {
        this(status, code, detail, null, null);
    }

    private WorkerRefusedException(GrpcStatus status, String code, String detail, String tee, String imageHash) {
        super(detail);
        this.status = status;
        this.code = code;
        this.tee = tee;
        this.imageHash = imageHash;
    }

    public GrpcStatus status() {
        return status;
    }

    public String code() {
        return code;
    }

    /** The worker's TEE when its attestation was read; null otherwise. */
    public String tee() {
        return tee;
    }

    /** The worker's image hash when its attestation was read; null otherwise. */
    public String imageHash() {
        return imageHash;
    }
}
