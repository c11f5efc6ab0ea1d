package org.cocoonjvm.worker.model;

/**
 * Which weight a tensor is, with the kernel library's ids ({@code ck_tensor_kind}). Shapes follow
 * Hugging Face: a Linear weight is {@code [out_features][in_features]}, row-major.
 */
public enum TensorKind {
    TOKEN_EMBD(0, false),
    OUTPUT_NORM(1, false),
    OUTPUT(2, false),
    ATTN_NORM(3, true),
    WQ(4, true),
    WK(5, true),
    WV(6, true),
    WO(7, true),
    BQ(8, true),
    BK(9, true),
    BV(10, true),
    Q_NORM(11, true),
    K_NORM(12, true),
    FFN_NORM(13, true),
    W_GATE(14, true),
    W_UP(15, true),
    W_DOWN(16, true);

    public final int abiId;
    /** One per layer, rather than one per model. */
    public final boolean perLayer;

    TensorKind(int abiId, boolean perLayer) {
        this.abiId = abiId;
        this.perLayer = perLayer;
    }

    /** Norm weights and biases: always passed to the kernels as F32. */
    public boolean isVector() {
        return switch (this) {
            case OUTPUT_NORM, ATTN_NORM, FFN_NORM, BQ, BK, BV, Q_NORM, K_NORM -> true;
            default -> false;
        };
    }
}
