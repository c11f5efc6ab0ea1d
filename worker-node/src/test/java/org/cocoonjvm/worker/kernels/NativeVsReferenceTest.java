package org.cocoonjvm.worker.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.cocoonjvm.worker.model.DType;
import org.cocoonjvm.worker.model.LoadedModel;
import org.cocoonjvm.worker.model.ModelFormat;
import org.cocoonjvm.worker.model.ModelLoader;
import org.cocoonjvm.worker.model.RandomModel;
import org.cocoonjvm.worker.model.RandomModelSpec;
import org.cocoonjvm.worker.model.RopeScaling;
import org.cocoonjvm.worker.model.Tensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The native kernels against the double-precision {@link ReferenceTransformer}, on small random
 * models of every supported architecture and weight format.
 *
 * <p>Tolerance: the largest logit difference, divided by the largest reference logit magnitude,
 * must stay under 1e-3 for F32/F16/BF16 weights (the reference reads the same rounded weights,
 * so only f32 arithmetic differs) and under 3e-2 for Q8_0, whose fast path also quantises
 * activations to 8 bits.
 */
class NativeVsReferenceTest {
    @TempDir
    static Path dir;

    static Stream<Arguments> models() {
        return Stream.of(
                Arguments.of("llama", DType.F32, ModelFormat.HF, 1e-3),
                Arguments.of("llama", DType.F16, ModelFormat.GGUF, 1e-3),
                Arguments.of("qwen2", DType.F32, ModelFormat.HF, 1e-3),
                Arguments.of("qwen2", DType.F16, ModelFormat.HF, 1e-3),
                Arguments.of("qwen2", DType.BF16, ModelFormat.HF, 1e-3),
                Arguments.of("qwen2", DType.Q8_0, ModelFormat.GGUF, 3e-2),
                Arguments.of("qwen3", DType.BF16, ModelFormat.GGUF, 1e-3),
                Arguments.of("qwen3", DType.F16, ModelFormat.HF, 1e-3));
    }

    private static LoadedModel write(RandomModelSpec spec, ModelFormat format) throws Exception {
        Path out = dir.resolve(spec.arch() + "-" + spec.dtype() + "-" + format + "-" + spec.tiedEmbeddings()
                + "-" + spec.ropeScaling().type());
        RandomModel.Written written = RandomModel.write(spec, out, EnumSet.of(format));
        return ModelLoader.load(format == ModelFormat.HF ? written.hfDir() : written.gguf());
    }

    private static ReferenceTransformer reference(LoadedModel m) {
        return new ReferenceTransformer(m.config(), (kind, layer) -> Tensors.toDoubles(m.weights().tensor(kind, layer)));
    }

    private static int[] prompt(int length, int vocab, long seed) {
        return new SplittableRandom(seed).ints(length, 0, vocab).toArray();
    }

    private static double relativeError(float[] actual, int offset, double[] expected) {
        double maxDiff = 0;
        double maxRef = 0;
        for (int i = 0; i < expected.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(actual[offset + i] - expected[i]));
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        return maxDiff / maxRef;
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("models")
    void logitsMatchReference(String arch, DType dtype, ModelFormat format, double tolerance) throws Exception {
        try (LoadedModel m = write(RandomModelSpec.tiny(arch).withDtype(dtype), format);
             NativeModel nm = new NativeModel(KernelLibrary.get(), m.weights(), 2, 64, 16, 2, 64)) {
            int vocab = m.config().vocab();
            int[] tokens = prompt(11, vocab, 1);
            float[] logits = new float[2 * vocab];
            // Entry 0 prefills the whole prompt; entry 1 only its first token: both compared.
            nm.entry(0, 0, 0, tokens, 0, true, 0, 0, 0, 0, 0, 0);
            nm.entry(1, 1, 0, new int[] {tokens[0]}, tokens.length, true, 0, 0, 0, 0, 0, 0);
            nm.step(2, new int[2], logits);

            ReferenceTransformer ref = reference(m);
            assertThat(relativeError(logits, 0, ref.logits(tokens))).isLessThan(tolerance);
            assertThat(relativeError(logits, vocab, ref.logits(new int[] {tokens[0]}))).isLessThan(tolerance);
        }
    }

    @Test
    void ropeScalingAndTiedEmbeddings_matchReference() throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny("llama").withTiedEmbeddings(true)
                .withRopeScaling(new RopeScaling(RopeScaling.Type.LLAMA3, 8, 1, 4, 64));
        try (LoadedModel m = write(spec, ModelFormat.HF);
             NativeModel nm = new NativeModel(KernelLibrary.get(), m.weights(), 2, 64, 16, 1, 256)) {
            int[] tokens = prompt(100, m.config().vocab(), 2);  // long enough for the scaled frequencies to matter
            float[] logits = new float[m.config().vocab()];
            nm.entry(0, 0, 0, tokens, 0, true, 0, 0, 0, 0, 0, 0);
            nm.step(1, new int[1], logits);
            assertThat(relativeError(logits, 0, reference(m).logits(tokens))).isLessThan(1e-3);
        }
    }

    @Test
    void chunkedPrefill_thenDecode_matchesReferenceAtEveryPosition() throws Exception {
        try (LoadedModel m = write(RandomModelSpec.tiny("qwen2").withDtype(DType.F16), ModelFormat.HF);
             NativeModel nm = new NativeModel(KernelLibrary.get(), m.weights(), 2, 64, 16, 1, 64)) {
            int vocab = m.config().vocab();
            int[] tokens = prompt(40, vocab, 3);
            float[] logits = new float[vocab];
            int[] next = new int[1];
            // Two prefill chunks of 17 tokens, then one token a step, each at its position.
            nm.entry(0, 0, 0, Arrays.copyOfRange(tokens, 0, 17), 0, false, 0, 0, 0, 0, 0, 0);
            nm.step(1, next, null);
            assertThat(next[0]).isEqualTo(-1);
            nm.entry(0, 0, 17, Arrays.copyOfRange(tokens, 17, 34), 0, true, 0, 0, 0, 0, 0, 0);
            nm.step(1, next, logits);
            ReferenceTransformer ref = reference(m);
            assertThat(relativeError(logits, 0, ref.logits(Arrays.copyOf(tokens, 34)))).isLessThan(1e-3);
            for (int pos = 34; pos < tokens.length; pos++) {
                nm.entry(0, 0, pos, new int[] {tokens[pos]}, 0, true, 0, 0, 0, 0, 0, 0);
                nm.step(1, next, logits);
                assertThat(relativeError(logits, 0, ref.logits(Arrays.copyOf(tokens, pos + 1)))).isLessThan(1e-3);
            }
        }
    }

    @Test
    void greedyTokens_sameAloneAndInABatch() throws Exception {
        try (LoadedModel m = write(RandomModelSpec.tiny("qwen3").withDtype(DType.F16), ModelFormat.HF);
             NativeModel nm = new NativeModel(KernelLibrary.get(), m.weights(), 2, 128, 16, 4, 128)) {
            int vocab = m.config().vocab();
            int[] target = prompt(9, vocab, 4);
            int[] alone = greedy(nm, new int[][] {target}, 12)[0];
            int[][] batch = greedy(nm, new int[][] {prompt(5, vocab, 5), target, prompt(21, vocab, 6), prompt(1, vocab, 7)}, 12);
            assertThat(batch[1]).containsExactly(alone);
        }
    }

    /** Greedy-decodes every prompt together (slot i = prompt i), {@code steps} tokens each. */
    private static int[][] greedy(NativeModel nm, int[][] prompts, int steps) {
        int n = prompts.length;
        int[][] out = new int[n][steps];
        int[] next = new int[n];
        int offset = 0;
        for (int i = 0; i < n; i++) {
            nm.entry(i, i, 0, prompts[i], offset, true, 0, 0, 0, 0, 0, 0);
            offset += prompts[i].length;
        }
        nm.step(n, next, null);
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < n; i++) {
                out[i][s] = next[i];
            }
            if (s + 1 == steps) {
                break;
            }
            for (int i = 0; i < n; i++) {
                nm.entry(i, i, prompts[i].length + s, new int[] {next[i]}, i, true, 0, 0, 0, 0, 0, 0);
            }
            nm.step(n, next, null);
        }
        for (int i = 0; i < n; i++) {
            nm.free(i);
        }
        return out;
    }

    @Test
    void invalidInput_isRejectedWithTheLibrarysReason() throws Exception {
        try (LoadedModel m = write(RandomModelSpec.tiny("qwen2"), ModelFormat.HF);
             NativeModel nm = new NativeModel(KernelLibrary.get(), m.weights(), 1, 8, 16, 1, 64)) {
            nm.entry(0, 0, 5, new int[] {1}, 0, true, 0, 0, 0, 0, 0, 0);  // position 5 of a sequence never started
            assertThatThrownBy(() -> nm.step(1, new int[1], null))
                    .isInstanceOf(KernelException.class)
                    .hasMessageContaining("ck_step");
        }
    }
}
