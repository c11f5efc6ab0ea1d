package org.cocoonjvm.worker.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Number formats of weights: F32 copies for the kernels' vector tensors, dequantisation to
 * {@code float[]} / {@code double[]} for reference computations, and the encoders the writers use.
 * Every format is little-endian, as in safetensors and GGUF.
 */
public final class Tensors {
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Elements in one Q8_0 block. */
    public static final int Q8_0_BLOCK = 32;
    private static final int Q8_0_BYTES = 34;

    private Tensors() {
    }

    /** A fresh F32 copy of any tensor (64-byte aligned), e.g. a norm or bias for the kernels. */
    public static MemorySegment toF32(Tensor tensor, Arena arena) {
        long n = tensor.elements();
        MemorySegment out = arena.allocate(n * 4, 64);
        if (tensor.dtype() == DType.F32) {
            MemorySegment.copy(tensor.data(), 0, out, 0, n * 4);
            return out;
        }
        float[] values = toFloats(tensor);
        MemorySegment.copy(values, 0, out, F32, 0, values.length);
        return out;
    }

    /** Every element as float, in row-major order (Q8_0: scale times quant, as the kernels compute). */
    public static float[] toFloats(Tensor tensor) {
        long n = tensor.elements();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + tensor.name() + " has too many elements for a Java array: " + n);
        }
        float[] out = new float[(int) n];
        MemorySegment data = tensor.data();
        long need = tensor.dtype().bytes(n);
        if (data.byteSize() < need) {
            throw new IllegalArgumentException("tensor " + tensor.name() + " has " + data.byteSize() + " bytes, needs " + need);
        }
        switch (tensor.dtype()) {
            case F32 -> MemorySegment.copy(data, F32, 0, out, 0, out.length);
            case F16 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = Float.float16ToFloat(data.get(I16, 2L * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = bf16ToFloat(data.get(I16, 2L * i));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < out.length / Q8_0_BLOCK; b++) {
                    long base = (long) b * Q8_0_BYTES;
                    float d = Float.float16ToFloat(data.get(I16, base));
                    for (int j = 0; j < Q8_0_BLOCK; j++) {
                        out[b * Q8_0_BLOCK + j] = d * data.get(ValueLayout.JAVA_BYTE, base + 2 + j);
                    }
                }
            }
        }
        return out;
    }

    /** {@link #toFloats} widened to double (exact: every format here is a subset of float). */
    public static double[] toDoubles(Tensor tensor) {
        float[] f = toFloats(tensor);
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** Round to nearest even, as PyTorch does; NaN stays NaN. */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /** The value a float becomes once stored as {@code dtype} (Q8_0 is not element-wise: unchanged). */
    public static float roundTo(DType dtype, float value) {
        return switch (dtype) {
            case F32, Q8_0 -> value;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(value));
            case BF16 -> bf16ToFloat(floatToBf16(value));
        };
    }

    /** Encodes values in {@code dtype}; Q8_0 as llama.cpp quantises (scale = max|x| / 127, round half away from zero). */
    public static byte[] encode(DType dtype, float[] values) {
        byte[] out = new byte[Math.toIntExact(dtype.bytes(values.length))];
        MemorySegment seg = MemorySegment.ofArray(out);
        switch (dtype) {
            case F32 -> MemorySegment.copy(values, 0, seg, F32, 0, values.length);
            case F16 -> {
                for (int i = 0; i < values.length; i++) {
                    seg.set(I16, 2L * i, Float.floatToFloat16(values[i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < values.length; i++) {
                    seg.set(I16, 2L * i, floatToBf16(values[i]));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < values.length / Q8_0_BLOCK; b++) {
                    float amax = 0;
                    for (int j = 0; j < Q8_0_BLOCK; j++) {
                        amax = Math.max(amax, Math.abs(values[b * Q8_0_BLOCK + j]));
                    }
                    float d = amax / 127f;
                    float id = d != 0 ? 1f / d : 0f;
                    long base = (long) b * Q8_0_BYTES;
                    seg.set(I16, base, Float.floatToFloat16(d));
                    for (int j = 0; j < Q8_0_BLOCK; j++) {
                        float x = values[b * Q8_0_BLOCK + j] * id;
                        int q = (int) (x >= 0 ? Math.floor(x + 0.5f) : -Math.floor(-x + 0.5f));
                        out[(int) base + 2 + j] = (byte) Math.max(-127, Math.min(127, q));
                    }
                }
            }
        }
        return out;
    }

    /** The tensor's bytes, copied onto the heap. */
    public static byte[] bytes(Tensor tensor) {
        return tensor.data().toArray(ValueLayout.JAVA_BYTE);
    }

    static String shape(long[] shape) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            sb.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        return sb.append(']').toString();
    }
}
