package org.cocoonjvm.worker.model;

/** Weight formats, with the kernel library's ids ({@code ck_dtype} in cocoon_kernels.h). */
public enum DType {
    F32(0, 4, 1),
    F16(1, 2, 1),
    BF16(2, 2, 1),
    /** GGUF Q8_0: blocks of 32 weights, each an f16 scale then 32 int8 (34 bytes a block). */
    Q8_0(3, 34, 32);

    /** The id the C ABI uses. */
    public final int abiId;
    private final int blockBytes;
    private final int blockElements;

    DType(int abiId, int blockBytes, int blockElements) {
        this.abiId = abiId;
        this.blockBytes = blockBytes;
        this.blockElements = blockElements;
    }

    /** Bytes that {@code elements} weights take; elements must be a multiple of the block size. */
    public long bytes(long elements) {
        if (elements % blockElements != 0) {
            throw new IllegalArgumentException(this + " needs a multiple of " + blockElements + " elements, got " + elements);
        }
        return elements / blockElements * blockBytes;
    }
}
