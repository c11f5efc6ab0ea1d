package org.cocoonjvm.worker.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class TensorsTest {
    private static Tensor tensor(DType d, float[] values) {
        return new Tensor("t", d, new long[] {values.length}, MemorySegment.ofArray(Tensors.encode(d, values)));
    }

    @Test
    void halfFormatsRoundToNearestEven() {
        assertThat(Tensors.floatToBf16(1.0f)).isEqualTo((short) 0x3F80);
        // 1 + 2^-8 is halfway between two bf16 values: ties to even (1.0)
        assertThat(Tensors.floatToBf16(1.00390625f)).isEqualTo((short) 0x3F80);
        // 1 + 3·2^-8 is halfway too: ties to even (1 + 2^-6 = 0x3F82)
        assertThat(Tensors.floatToBf16(1.01171875f)).isEqualTo((short) 0x3F82);
        assertThat(Tensors.bf16ToFloat((short) 0xC040)).isEqualTo(-3.0f);
        assertThat(Float.isNaN(Tensors.bf16ToFloat(Tensors.floatToBf16(Float.NaN)))).isTrue();
        float[] v = {0, 1, -2.5f, 65504, 1e-3f, 0.1f};
        assertThat(Tensors.toFloats(tensor(DType.F16, v)))
                .containsExactly(0, 1, -2.5f, 65504, Tensors.roundTo(DType.F16, 1e-3f), Tensors.roundTo(DType.F16, 0.1f));
        assertThat(Tensors.toFloats(tensor(DType.BF16, v))[5]).isEqualTo(Tensors.roundTo(DType.BF16, 0.1f));
        assertThat(Tensors.toFloats(tensor(DType.F32, v))).isEqualTo(v);
    }

    @Test
    void q8BlocksAreScalePlusInt8() {
        float[] v = new float[64];
        for (int i = 0; i < 64; i++) {
            v[i] = (i - 32) / 10f;
        }
        byte[] q = Tensors.encode(DType.Q8_0, v);
        assertThat(q).hasSize(68);
        // block 0: max |x| = 3.2 at i = 0 → scale 3.2/127, quant -127
        assertThat(Float.float16ToFloat((short) ((q[0] & 0xff) | (q[1] << 8)))).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(3.2f / 127)));
        assertThat(q[2]).isEqualTo((byte) -127);
        float[] back = Tensors.toFloats(new Tensor("q", DType.Q8_0, new long[] {64}, MemorySegment.ofArray(q)));
        for (int i = 0; i < 64; i++) {
            assertThat(Math.abs(back[i] - v[i])).isLessThan(0.6f * 3.2f / 127);
        }
        float[] zeros = Tensors.toFloats(tensor(DType.Q8_0, new float[32]));
        assertThat(zeros).containsOnly(0f);
    }
}
