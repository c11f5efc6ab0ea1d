package org.cocoonjvm.worker.model;

/** ggml tensor type ids as GGUF stores them, and the ones this worker maps to a {@link DType}. */
public final class GgmlType {
    public static final int F32 = 0;
    public static final int F16 = 1;
    public static final int Q8_0 = 8;
    public static final int BF16 = 30;

    private static final String[] NAMES = {
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",
        "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
        "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0",
        "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"
    };

    private GgmlType() {
    }

    public static String name(int type) {
        return type >= 0 && type < NAMES.length ? NAMES[type] : "unknown";
    }

    /** The DType of a supported ggml type; null otherwise. */
    public static DType dtype(int type) {
        return switch (type) {
            case F32 -> DType.F32;
            case F16 -> DType.F16;
            case Q8_0 -> DType.Q8_0;
            case BF16 -> DType.BF16;
            default -> null;
        };
    }

    public static int of(DType dtype) {
        return switch (dtype) {
            case F32 -> F32;
            case F16 -> F16;
            case Q8_0 -> Q8_0;
            case BF16 -> BF16;
        };
    }

    /** The DType of a tensor, or the error this worker reports for anything else. */
    public static DType require(GgufFile.TensorInfo t) {
        DType d = dtype(t.ggmlType());
        if (d == null) {
            throw new ModelFormatException("tensor " + t.name() + " has GGUF type " + name(t.ggmlType()) + " ("
                    + t.ggmlType() + "); supported: F32, F16, BF16, Q8_0");
        }
        return d;
    }

    static long bytes(GgufFile.TensorInfo t) {
        DType d = require(t);
        try {
            return d.bytes(t.elements());
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException("tensor " + t.name() + ": " + e.getMessage(), e);
        }
    }
}
