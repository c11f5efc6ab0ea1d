package org.cocoonjvm.worker.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufTest {
    @TempDir
    Path dir;

    @Test
    void parsesMetadataTensorInfosAndAlignment() throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny("qwen2");
        RandomModel.Written w = TestModels.writeBoth(spec, dir);
        RandomModel.Vocabulary vocab = RandomModel.vocabulary(spec);
        GgufFile f = GgufFile.readHeader(w.gguf());
        assertThat(f.version()).isEqualTo(3);
        assertThat(f.alignment()).isEqualTo(32);
        assertThat(f.dataOffset() % 32).isZero();
        assertThat(f.get("general.architecture").asString()).isEqualTo("qwen2");
        assertThat(f.get("qwen2.block_count").type()).isEqualTo(GgufFile.ValueType.UINT32);
        assertThat(f.get("qwen2.block_count").asLong()).isEqualTo(2);
        assertThat(f.get("qwen2.embedding_length").asLong()).isEqualTo(64);
        assertThat(f.get("qwen2.attention.layer_norm_rms_epsilon").type()).isEqualTo(GgufFile.ValueType.FLOAT32);
        assertThat(f.get("qwen2.attention.layer_norm_rms_epsilon").asDouble()).isEqualTo(1e-6);
        assertThat(f.get("qwen2.rope.freq_base").asDouble()).isEqualTo(1e6);
        assertThat(f.get("tokenizer.ggml.model").asString()).isEqualTo("gpt2");
        assertThat(f.get("tokenizer.ggml.pre").asString()).isEqualTo("gpt-2");
        List<Object> tokens = f.get("tokenizer.ggml.tokens").asList();
        assertThat(tokens).hasSize(512);
        assertThat(tokens.get('h')).isEqualTo("h");
        assertThat(tokens.get(' ')).isEqualTo("Ġ");
        assertThat(tokens.get(vocab.imStart())).isEqualTo("<|im_start|>");
        assertThat(tokens.get(511)).isEqualTo("[PAD511]");
        List<Object> types = f.get("tokenizer.ggml.token_type").asList();
        assertThat(f.get("tokenizer.ggml.token_type").elementType()).isEqualTo(GgufFile.ValueType.INT32);
        assertThat(types.get(0)).isEqualTo(1L);
        assertThat(types.get(vocab.imEnd())).isEqualTo(3L);
        assertThat(types.get(511)).isEqualTo(5L);
        assertThat(f.get("tokenizer.ggml.merges").asList()).hasSize(vocab.merges().size()).first().isEqualTo("h e");
        assertThat(f.get("tokenizer.ggml.eos_token_id").asLong()).isEqualTo(vocab.imEnd());
        assertThat(f.get("tokenizer.chat_template").asString()).isEqualTo(RandomModel.CHAT_TEMPLATE);

        GgufFile.TensorInfo embd = f.tensor("token_embd.weight");
        assertThat(embd.dims()).containsExactly(64, 512); // innermost first
        assertThat(embd.shape()).containsExactly(512, 64);
        assertThat(embd.ggmlType()).isEqualTo(GgmlType.F32);
        assertThat(f.tensor("blk.1.attn_k.weight").dims()).containsExactly(64, 32);
        assertThat(f.tensor("blk.0.attn_q.bias").dims()).containsExactly(64);
        for (GgufFile.TensorInfo t : f.tensors()) {
            assertThat(t.offset() % 32).as(t.name()).isZero();
        }
        assertThat(f.tensors().getFirst().name()).isEqualTo("token_embd.weight");
    }

    @Test
    void writerAndReaderAgreeOnEveryValueTypeAndAcceptVersion2() throws Exception {
        GgufWriter w = new GgufWriter()
                .put("u8", GgufFile.Value.of(GgufFile.ValueType.UINT8, 200L))
                .put("i8", GgufFile.Value.of(GgufFile.ValueType.INT8, -5L))
                .put("u16", GgufFile.Value.of(GgufFile.ValueType.UINT16, 60000L))
                .put("i16", GgufFile.Value.of(GgufFile.ValueType.INT16, -30000L))
                .put("u32", GgufFile.Value.of(GgufFile.ValueType.UINT32, 4000000000L))
                .put("i32", GgufFile.Value.of(GgufFile.ValueType.INT32, -7L))
                .put("f32", GgufFile.Value.of(GgufFile.ValueType.FLOAT32, 0.1f))
                .put("bool", GgufFile.Value.of(GgufFile.ValueType.BOOL, true))
                .put("str", GgufFile.Value.of(GgufFile.ValueType.STRING, "héllo ✓"))
                .put("u64", GgufFile.Value.of(GgufFile.ValueType.UINT64, -1L))
                .put("i64", GgufFile.Value.of(GgufFile.ValueType.INT64, Long.MIN_VALUE))
                .put("f64", GgufFile.Value.of(GgufFile.ValueType.FLOAT64, Math.PI))
                .put("general.alignment", GgufFile.Value.of(GgufFile.ValueType.UINT32, 64L))
                .put("arr.i32", GgufFile.Value.array(GgufFile.ValueType.INT32, List.of(1L, -2L, 3L)))
                .put("arr.str", GgufFile.Value.array(GgufFile.ValueType.STRING, List.of("a", "", "c d")))
                .put("arr.f32", GgufFile.Value.array(GgufFile.ValueType.FLOAT32, List.of(1.5f, -0.25f)))
                .put("arr.bool", GgufFile.Value.array(GgufFile.ValueType.BOOL, List.of(true, false)))
                .put("arr.empty", GgufFile.Value.array(GgufFile.ValueType.UINT8, List.of()))
                .addTensor("a", new long[] {3}, GgmlType.F32, new byte[12])
                .addTensor("b", new long[] {2, 32}, GgmlType.Q8_0, new byte[68]);
        Path file = dir.resolve("kv.gguf");
        w.write(file);
        for (int version : new int[] {3, 2}) {
            if (version == 2) {
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(2).flip(), 4);
                }
            }
            GgufFile f = GgufFile.readHeader(file);
            assertThat(f.version()).isEqualTo(version);
            Map<String, GgufFile.Value> m = f.metadata();
            assertThat(m.keySet()).startsWith("u8", "i8", "u16", "i16");
            assertThat(m.get("u8").asLong()).isEqualTo(200);
            assertThat(m.get("i8").asLong()).isEqualTo(-5);
            assertThat(m.get("u16").asLong()).isEqualTo(60000);
            assertThat(m.get("i16").asLong()).isEqualTo(-30000);
            assertThat(m.get("u32").asLong()).isEqualTo(4000000000L);
            assertThat(m.get("i32").asLong()).isEqualTo(-7);
            assertThat(m.get("f32").value()).isEqualTo(0.1f);
            assertThat(m.get("f32").asDouble()).isEqualTo(0.1);
            assertThat(m.get("bool").value()).isEqualTo(true);
            assertThat(m.get("str").asString()).isEqualTo("héllo ✓");
            assertThat(m.get("u64").asLong()).isEqualTo(-1L);
            assertThat(m.get("i64").asLong()).isEqualTo(Long.MIN_VALUE);
            assertThat(m.get("f64").asDouble()).isEqualTo(Math.PI);
            assertThat(m.get("arr.i32").asList()).containsExactly(1L, -2L, 3L);
            assertThat(m.get("arr.str").asList()).containsExactly("a", "", "c d");
            assertThat(m.get("arr.f32").asList()).containsExactly(1.5f, -0.25f);
            assertThat(m.get("arr.bool").asList()).containsExactly(true, false);
            assertThat(m.get("arr.empty").asList()).isEmpty();
            assertThat(m.get("arr.empty").elementType()).isEqualTo(GgufFile.ValueType.UINT8);
            assertThat(f.alignment()).isEqualTo(64);
            assertThat(f.dataOffset() % 64).isZero();
            assertThat(f.tensor("b").offset()).isEqualTo(64);
            assertThat(f.tensor("b").shape()).containsExactly(2, 32);
        }
    }

    @Test
    void rejectsWhatIsNotGguf() throws Exception {
        Path notGguf = dir.resolve("x.gguf");
        Files.write(notGguf, new byte[64]);
        assertThatThrownBy(() -> GgufFile.readHeader(notGguf)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("not a GGUF file");
        Path v1 = dir.resolve("v1.gguf");
        new GgufWriter().putString("k", "v").write(v1);
        try (FileChannel ch = FileChannel.open(v1, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(1).flip(), 4);
        }
        assertThatThrownBy(() -> GgufFile.readHeader(v1)).hasMessageContaining("GGUF version 1 is not supported");
        Path truncated = dir.resolve("t.gguf");
        byte[] full = Files.readAllBytes(TestModels.writeBoth(RandomModelSpec.tiny("llama"), dir.resolve("m")).gguf());
        Files.write(truncated, java.util.Arrays.copyOf(full, 200));
        assertThatThrownBy(() -> GgufFile.readHeader(truncated)).hasMessageContaining("runs past the end");
    }

    @Test
    void llamaQkRowsArePermutedInTheFileAndRestoredOnLoad() throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny("llama");
        RandomModel.Written w = TestModels.writeBoth(spec, dir);
        ModelConfig c = w.config();
        Map<String, float[]> hf = RandomModel.weights(spec);
        try (Arena arena = Arena.ofConfined()) {
            GgufFile f = GgufFile.open(w.gguf(), arena);
            checkPermuted(f, "blk.1.attn_q.weight", hf.get("model.layers.1.self_attn.q_proj.weight"), c.heads(), c);
            checkPermuted(f, "blk.1.attn_k.weight", hf.get("model.layers.1.self_attn.k_proj.weight"), c.kvHeads(), c);
            // V and O are not permuted
            assertThat(raw(f, "blk.1.attn_v.weight")).isEqualTo(hf.get("model.layers.1.self_attn.v_proj.weight"));
        }
        try (LoadedModel m = ModelLoader.load(w.gguf())) {
            assertThat(Tensors.toFloats(m.weights().tensor(TensorKind.WQ, 1)))
                    .isEqualTo(hf.get("model.layers.1.self_attn.q_proj.weight"));
            assertThat(Tensors.toFloats(m.weights().tensor(TensorKind.WK, 0)))
                    .isEqualTo(hf.get("model.layers.0.self_attn.k_proj.weight"));
        }
    }

    private static void checkPermuted(GgufFile f, String name, float[] hfValues, int nHead, ModelConfig c) {
        float[] file = raw(f, name);
        int hidden = c.hidden();
        int headDim = c.headDim();
        assertThat(file).isNotEqualTo(hfValues);
        for (int h = 0; h < nHead; h++) {
            for (int j = 0; j < headDim / 2; j++) {
                for (int s = 0; s < 2; s++) {
                    int ggufRow = h * headDim + 2 * j + s;
                    int hfRow = h * headDim + s * headDim / 2 + j;
                    assertThat(java.util.Arrays.copyOfRange(file, ggufRow * hidden, (ggufRow + 1) * hidden))
                            .isEqualTo(java.util.Arrays.copyOfRange(hfValues, hfRow * hidden, (hfRow + 1) * hidden));
                }
            }
        }
    }

    private static float[] raw(GgufFile f, String name) {
        GgufFile.TensorInfo t = f.tensor(name);
        return Tensors.toFloats(new Tensor(name, GgmlType.require(t), t.shape(), f.data(t)));
    }

    @Test
    void qwenGgufsAreNotPermuted() throws Exception {
        for (String arch : List.of("qwen2", "qwen3")) {
            RandomModelSpec spec = RandomModelSpec.tiny(arch);
            RandomModel.Written w = RandomModel.write(spec, dir.resolve(arch), java.util.Set.of(ModelFormat.GGUF));
            try (Arena arena = Arena.ofConfined()) {
                GgufFile f = GgufFile.open(w.gguf(), arena);
                assertThat(raw(f, "blk.0.attn_q.weight")).isEqualTo(RandomModel.weights(spec).get("model.layers.0.self_attn.q_proj.weight"));
                assertThat(raw(f, "blk.0.attn_k.weight")).isEqualTo(RandomModel.weights(spec).get("model.layers.0.self_attn.k_proj.weight"));
            }
        }
    }

    @Test
    void permutationIsInvertedExactly() {
        Random r = new Random(7);
        for (int[] dims : new int[][] {{8, 2, 3}, {64, 4, 34}, {32, 1, 1}}) {
            int rows = dims[0];
            int nHead = dims[1];
            int rowBytes = dims[2];
            byte[] src = new byte[rows * rowBytes];
            r.nextBytes(src);
            byte[] mid = new byte[src.length];
            byte[] back = new byte[src.length];
            GgufModel.permuteRows(MemorySegment.ofArray(src), MemorySegment.ofArray(mid), rows, rowBytes, nHead, true);
            GgufModel.permuteRows(MemorySegment.ofArray(mid), MemorySegment.ofArray(back), rows, rowBytes, nHead, false);
            assertThat(back).isEqualTo(src);
            if (rows > 2) {
                assertThat(mid).isNotEqualTo(src);
            }
        }
    }

    @Test
    void unsupportedTensorTypeIsNamedInTheError() throws Exception {
        RandomModel.Written w = RandomModel.write(RandomModelSpec.tiny("llama"), dir, java.util.Set.of(ModelFormat.GGUF));
        Path q4 = dir.resolve("q4k.gguf");
        // 64 × 64 = 4096 weights = 16 Q4_K super-blocks of 144 bytes
        TestModels.copyGguf(w.gguf(), q4, m -> { },
                new TestModels.Replacement("blk.0.attn_q.weight", 12, null, new byte[16 * 144]));
        assertThatThrownBy(() -> ModelLoader.load(q4)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("tensor blk.0.attn_q.weight has GGUF type Q4_K (12); supported: F32, F16, BF16, Q8_0");
        // the header itself still reads
        assertThat(GgufFile.readHeader(q4).tensor("blk.0.attn_q.weight").ggmlType()).isEqualTo(12);
    }

    @Test
    void shapeMismatchAndArchitectureErrors() throws Exception {
        RandomModel.Written w = RandomModel.write(RandomModelSpec.tiny("qwen3"), dir, java.util.Set.of(ModelFormat.GGUF));
        Path wrongFfn = dir.resolve("ffn.gguf");
        TestModels.copyGguf(w.gguf(), wrongFfn, m -> m.put("qwen3.feed_forward_length",
                GgufFile.Value.of(GgufFile.ValueType.UINT32, 96L)));
        assertThatThrownBy(() -> ModelLoader.load(wrongFfn)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("tensor blk.0.ffn_gate.weight has shape [128, 64], expected [96, 64]");
        Path gemma = dir.resolve("gemma.gguf");
        TestModels.copyGguf(w.gguf(), gemma, m -> m.put("general.architecture",
                GgufFile.Value.of(GgufFile.ValueType.STRING, "gemma")));
        assertThatThrownBy(() -> ModelLoader.load(gemma)).hasMessageContaining("unsupported GGUF architecture 'gemma'");
        Path spm = dir.resolve("spm.gguf");
        TestModels.copyGguf(w.gguf(), spm, m -> m.put("tokenizer.ggml.model",
                GgufFile.Value.of(GgufFile.ValueType.STRING, "llama")));
        assertThatThrownBy(() -> ModelLoader.load(spm)).hasMessageContaining("GGUF tokenizer model 'llama' is not supported");
        Path noNorm = dir.resolve("nonorm.gguf");
        TestModels.copyGguf(w.gguf(), noNorm, m -> { },
                new TestModels.Replacement("blk.1.attn_k_norm.weight", GgmlType.F32, new long[] {16}, new byte[64]));
        assertThatThrownBy(() -> ModelLoader.load(noNorm))
                .hasMessageContaining("tensor blk.1.attn_k_norm.weight has shape [16], expected [32]");
    }

    @Test
    void llama3RopeFreqsAreRecognisedWithoutOurOwnKeys() throws Exception {
        RopeScaling llama31 = new RopeScaling(RopeScaling.Type.LLAMA3, 8, 1, 4, 8192);
        RandomModel.Written w = RandomModel.write(RandomModelSpec.tiny("llama").withRopeScaling(llama31), dir,
                java.util.Set.of(ModelFormat.GGUF));
        Path plain = dir.resolve("plain.gguf");
        TestModels.copyGguf(w.gguf(), plain, m -> m.keySet().removeIf(k -> k.startsWith("cocoon.")));
        try (LoadedModel m = ModelLoader.load(plain)) {
            assertThat(m.config().ropeScaling()).isEqualTo(llama31);
        }
        // factors that no Llama 3 scaling produces are refused rather than guessed
        Path odd = dir.resolve("odd.gguf");
        float[] weird = new float[8];
        java.util.Arrays.fill(weird, 2.5f);
        weird[0] = 1;
        weird[3] = 1.7f;
        TestModels.copyGguf(plain, odd, m -> { }, new TestModels.Replacement(GgufModel.ROPE_FREQS, GgmlType.F32,
                new long[] {8}, Tensors.encode(DType.F32, weird)));
        assertThatThrownBy(() -> ModelLoader.load(odd)).hasMessageContaining("rope_freqs.weight does not match");
    }

    @Test
    void addBosTokenBecomesAPostProcessor() throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny("llama");
        RandomModel.Written w = RandomModel.write(spec, dir, java.util.Set.of(ModelFormat.GGUF));
        Path bos = dir.resolve("bos.gguf");
        TestModels.copyGguf(w.gguf(), bos, m -> m.put("tokenizer.ggml.add_bos_token",
                GgufFile.Value.of(GgufFile.ValueType.BOOL, true)));
        int endOfText = RandomModel.vocabulary(spec).endOfText();
        try (LoadedModel m = ModelLoader.load(bos)) {
            assertThat(m.tokenizer().encode("hello")).startsWith(endOfText).hasSize(4);
            int[] chat = m.tokenizer().encodeChat(List.of(org.cocoonjvm.protocol.grpc.ChatMessage.newBuilder()
                    .setRole("user").setContent("hi").build()));
            assertThat(chat[0]).isEqualTo(m.tokenizer().specialTokenId("<|im_start|>"));
        }
    }

    @Test
    void ggufTokenizerIsTheSameTokenizerJson() throws Exception {
        RandomModel.Written w = TestModels.writeBoth(RandomModelSpec.tiny("qwen3"), dir);
        try (Arena arena = Arena.ofConfined()) {
            GgufFile f = GgufFile.open(w.gguf(), arena);
            assertThat(new io.vertx.core.json.JsonObject(GgufModel.tokenizerJson(f)))
                    .isEqualTo(new io.vertx.core.json.JsonObject(Files.readString(w.hfDir().resolve("tokenizer.json"))));
        }
    }

    @Test
    void q8RowsMustBeWholeBlocks() throws Exception {
        RandomModel.Written w = RandomModel.write(RandomModelSpec.tiny("llama"), dir, java.util.Set.of(ModelFormat.GGUF));
        Path bad = dir.resolve("bad.gguf");
        // same byte count as 64 × 64 Q8_0, but rows of 16
        TestModels.copyGguf(w.gguf(), bad, m -> { }, new TestModels.Replacement("blk.0.attn_v.weight", GgmlType.Q8_0,
                new long[] {128, 16}, new byte[64 * 16 / 32 * 34 * 2]));
        assertThatThrownBy(() -> ModelLoader.load(bad)).hasMessageContaining("rows have 16 elements");
    }
}
