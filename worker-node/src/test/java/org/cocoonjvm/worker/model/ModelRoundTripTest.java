package org.cocoonjvm.worker.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Random models of every architecture, written as HF and GGUF, load back with the same config and weights. */
class ModelRoundTripTest {
    @TempDir
    Path dir;

    static Stream<Arguments> archAndDtype() {
        return Stream.of("llama", "qwen2", "qwen3").flatMap(arch ->
                Stream.of(DType.F32, DType.F16, DType.BF16).map(d -> Arguments.of(arch, d)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("archAndDtype")
    void hfAndGgufLoadTheSameModel(String arch, DType dtype) throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny(arch).withDtype(dtype);
        RandomModel.Written w = TestModels.writeBoth(spec, dir);
        Map<String, float[]> expected = RandomModel.weights(spec);
        try (LoadedModel hf = ModelLoader.load(w.hfDir()); LoadedModel gguf = ModelLoader.load(w.gguf())) {
            assertThat(hf.config()).isEqualTo(w.config());
            assertThat(gguf.config()).isEqualTo(hf.config());
            assertThat(hf.format()).isEqualTo(ModelFormat.HF);
            assertThat(gguf.format()).isEqualTo(ModelFormat.GGUF);
            assertThat(gguf.name()).isEqualTo("random-" + arch);
            assertThat(hf.name()).isEqualTo("random-" + arch);  // config.json _name_or_path
            ModelConfig c = hf.config();
            assertThat(c.qkNorm()).isEqualTo(arch.equals("qwen3"));
            assertThat(c.attentionBias()).isEqualTo(arch.equals("qwen2"));
            int checked = 0;
            for (TensorKind kind : TensorKind.values()) {
                for (int layer = 0; layer < (kind.perLayer ? c.layers() : 1); layer++) {
                    Tensor a = hf.weights().tensor(kind, layer);
                    Tensor b = gguf.weights().tensor(kind, layer);
                    if (c.shape(kind) == null) {
                        assertThat(a).as("%s", kind).isNull();
                        assertThat(b).as("%s", kind).isNull();
                        continue;
                    }
                    assertThat(a.shape()).isEqualTo(c.shape(kind));
                    assertThat(b.shape()).isEqualTo(c.shape(kind));
                    assertThat(a.dtype()).isEqualTo(dtype);
                    assertThat(b.dtype()).isEqualTo(kind.isVector() ? DType.F32 : dtype);
                    float[] want = expected.get(TensorNames.hf(kind, layer));
                    assertThat(Tensors.toFloats(a)).as(a.name()).isEqualTo(want);
                    assertThat(Tensors.toFloats(b)).as(b.name()).isEqualTo(want);
                    checked++;
                }
            }
            assertThat(checked).isEqualTo(((MappedModelWeights) hf.weights()).tensors().size());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("arches")
    void q8GgufStaysWithinQuantisationError(String arch) throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny(arch).withDtype(DType.Q8_0);
        RandomModel.Written w = TestModels.writeBoth(spec, dir);
        try (LoadedModel hf = ModelLoader.load(w.hfDir()); LoadedModel gguf = ModelLoader.load(w.gguf())) {
            assertThat(gguf.config()).isEqualTo(hf.config());
            ModelConfig c = hf.config();
            for (TensorKind kind : TensorKind.values()) {
                if (c.shape(kind) == null) {
                    continue;
                }
                for (int layer = 0; layer < (kind.perLayer ? c.layers() : 1); layer++) {
                    Tensor a = hf.weights().tensor(kind, layer);
                    Tensor b = gguf.weights().tensor(kind, layer);
                    assertThat(a.dtype()).isEqualTo(DType.F32);
                    float[] x = Tensors.toFloats(a);
                    float[] q = Tensors.toFloats(b);
                    if (kind.isVector()) {
                        assertThat(b.dtype()).isEqualTo(DType.F32);
                        assertThat(q).isEqualTo(x);
                        continue;
                    }
                    assertThat(b.dtype()).isEqualTo(DType.Q8_0);
                    for (int blk = 0; blk < x.length / 32; blk++) {
                        float amax = 0;
                        for (int j = 0; j < 32; j++) {
                            amax = Math.max(amax, Math.abs(x[blk * 32 + j]));
                        }
                        float bound = 0.6f * amax / 127 + 1e-7f; // half a step, plus the f16 scale's rounding
                        for (int j = 0; j < 32; j++) {
                            int i = blk * 32 + j;
                            assertThat(Math.abs(q[i] - x[i])).as("%s[%d]", b.name(), i).isLessThanOrEqualTo(bound);
                        }
                    }
                }
            }
        }
    }

    static Stream<String> arches() {
        return Stream.of("llama", "qwen2", "qwen3");
    }

    @Test
    void shardedTiedAndRopeScaledModelsRoundTrip() throws Exception {
        RopeScaling llama3 = new RopeScaling(RopeScaling.Type.LLAMA3, 32, 1, 4, 8192);
        RandomModelSpec spec = RandomModelSpec.tiny("llama").withShards(3).withTiedEmbeddings(true).withRopeScaling(llama3);
        RandomModel.Written w = TestModels.writeBoth(spec, dir);
        try (Stream<Path> files = Files.list(w.hfDir())) {
            assertThat(files.map(p -> p.getFileName().toString()).filter(n -> n.contains("safetensors")).sorted())
                    .containsExactly("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                            "model-00003-of-00003.safetensors", "model.safetensors.index.json");
        }
        try (LoadedModel hf = ModelLoader.load(w.hfDir()); LoadedModel gguf = ModelLoader.load(w.gguf())) {
            assertThat(hf.config().ropeScaling()).isEqualTo(llama3);
            assertThat(hf.config().tiedEmbeddings()).isTrue();
            assertThat(hf.weights().tensor(TensorKind.OUTPUT, 0)).isNull();
            assertThat(gguf.config()).isEqualTo(hf.config());
            assertThat(Tensors.toFloats(gguf.weights().tensor(TensorKind.W_DOWN, 1)))
                    .isEqualTo(Tensors.toFloats(hf.weights().tensor(TensorKind.W_DOWN, 1)));
        }

        RopeScaling linear = new RopeScaling(RopeScaling.Type.LINEAR, 4, 1, 1, 0);
        RandomModel.Written w2 = TestModels.writeBoth(RandomModelSpec.tiny("qwen2").withRopeScaling(linear), dir.resolve("linear"));
        try (LoadedModel hf = ModelLoader.load(w2.hfDir()); LoadedModel gguf = ModelLoader.load(w2.gguf())) {
            assertThat(hf.config().ropeScaling()).isEqualTo(linear);
            assertThat(gguf.config()).isEqualTo(hf.config());
        }
    }

    @Test
    void vectorTensorsConvertToF32ForTheKernels() throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny("qwen2").withDtype(DType.BF16);
        RandomModel.Written w = RandomModel.write(spec, dir, java.util.Set.of(ModelFormat.HF));
        try (LoadedModel hf = ModelLoader.load(w.hfDir()); Arena arena = Arena.ofConfined()) {
            for (TensorKind kind : new TensorKind[] {TensorKind.ATTN_NORM, TensorKind.BQ, TensorKind.BK, TensorKind.BV}) {
                Tensor t = hf.weights().tensor(kind, 1);
                assertThat(t.dtype()).isEqualTo(DType.BF16);
                MemorySegment f32 = Tensors.toF32(t, arena);
                assertThat(f32.byteSize()).isEqualTo(4 * t.elements());
                assertThat(f32.address() % 64).isZero();
                Tensor asF32 = new Tensor(t.name(), DType.F32, t.shape(), f32);
                assertThat(Tensors.toFloats(asF32)).isEqualTo(Tensors.toFloats(t));
                double[] d = Tensors.toDoubles(t);
                assertThat(d[3]).isEqualTo((double) Tensors.toFloats(t)[3]);
            }
        }
    }
}
