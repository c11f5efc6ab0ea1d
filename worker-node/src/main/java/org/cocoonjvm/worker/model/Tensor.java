package org.cocoonjvm.worker.model;

import java.lang.foreign.MemorySegment;

/**
 * One weight, in its file's format. {@code data} usually points into a memory-mapped file, so it
 * is only valid while the {@link ModelWeights} that gave it out is open.
 *
 * @param shape outermost first, as in Hugging Face (a Linear weight is {@code [out][in]})
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {
    public long elements() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }
}
