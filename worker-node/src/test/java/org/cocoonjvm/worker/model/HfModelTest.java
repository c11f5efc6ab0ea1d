package org.cocoonjvm.worker.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfModelTest {
    @TempDir
    Path dir;

    private Path hf(String arch) throws Exception {
        return RandomModel.write(RandomModelSpec.tiny(arch), dir, Set.of(ModelFormat.HF)).hfDir();
    }

    private static void editConfig(Path hf, Consumer<JsonObject> edit) throws Exception {
        JsonObject c = new JsonObject(Files.readString(hf.resolve("config.json")));
        edit.accept(c);
        Files.writeString(hf.resolve("config.json"), c.encodePrettily());
    }

    @Test
    void parsesConfigJsonFieldsAndDefaults() {
        JsonObject c = new JsonObject()
                .put("architectures", new JsonArray().add("Qwen2ForCausalLM"))
                .put("hidden_size", 896).put("num_hidden_layers", 24).put("num_attention_heads", 14)
                .put("num_key_value_heads", 2).put("intermediate_size", 4864).put("vocab_size", 151936)
                .put("max_position_embeddings", 32768).put("rms_norm_eps", 1e-6).put("rope_theta", 1000000.0)
                .put("tie_word_embeddings", true).put("bos_token_id", 151643).put("eos_token_id", 151645)
                .putNull("rope_scaling").putNull("head_dim");
        JsonObject gen = new JsonObject().put("eos_token_id", new JsonArray().add(151645).add(151643));
        ModelConfig m = HfConfigs.parse(c, gen, "test");
        assertThat(m).isEqualTo(new ModelConfig("qwen2", 24, 896, 14, 2, 64, 4864, 151936, 32768, 1e-6, 1e6,
                RopeScaling.NONE, true, false, true, 151643, List.of(151645, 151643)));

        JsonObject llama = new JsonObject()
                .put("architectures", new JsonArray().add("LlamaForCausalLM"))
                .put("hidden_size", 2048).put("num_hidden_layers", 16).put("num_attention_heads", 32)
                .put("num_key_value_heads", 8).put("intermediate_size", 8192).put("vocab_size", 128256)
                .put("max_position_embeddings", 131072).put("rms_norm_eps", 1e-5).put("rope_theta", 500000.0)
                .put("rope_scaling", new JsonObject().put("rope_type", "llama3").put("factor", 32.0)
                        .put("low_freq_factor", 1.0).put("high_freq_factor", 4.0)
                        .put("original_max_position_embeddings", 8192))
                .put("tie_word_embeddings", true).put("bos_token_id", 128000)
                .put("eos_token_id", new JsonArray().add(128001).add(128008).add(128009));
        ModelConfig l = HfConfigs.parse(llama, null, "test");
        assertThat(l.headDim()).isEqualTo(64);
        assertThat(l.attentionBias()).isFalse();
        assertThat(l.ropeScaling()).isEqualTo(new RopeScaling(RopeScaling.Type.LLAMA3, 32, 1, 4, 8192));
        assertThat(l.eosTokens()).containsExactly(128001, 128008, 128009);

        JsonObject linear = llama.copy().put("rope_scaling", new JsonObject().put("type", "linear").put("factor", 2.0));
        assertThat(HfConfigs.parse(linear, null, "t").ropeScaling().type()).isEqualTo(RopeScaling.Type.LINEAR);
        JsonObject yarn = llama.copy().put("rope_scaling", new JsonObject().put("rope_type", "yarn").put("factor", 4.0));
        assertThatThrownBy(() -> HfConfigs.parse(yarn, null, "t")).hasMessageContaining("unsupported rope_scaling type 'yarn'");
        JsonObject mistral = llama.copy().put("architectures", new JsonArray().add("MistralForCausalLM"));
        assertThatThrownBy(() -> HfConfigs.parse(mistral, null, "t"))
                .hasMessageContaining("unsupported architecture [\"MistralForCausalLM\"]");
        JsonObject qwen3 = c.copy().put("architectures", new JsonArray().add("Qwen3ForCausalLM")).put("head_dim", 128);
        ModelConfig q3 = HfConfigs.parse(qwen3, null, "t");
        assertThat(q3.qkNorm()).isTrue();
        assertThat(q3.attentionBias()).isFalse();
        assertThat(q3.headDim()).isEqualTo(128);
    }

    @Test
    void shapeMismatchNamesTensorAndShapes() throws Exception {
        Path hf = hf("llama");
        editConfig(hf, c -> c.put("intermediate_size", 96));
        assertThatThrownBy(() -> ModelLoader.load(hf)).isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("tensor model.layers.0.mlp.gate_proj.weight has shape [128, 64], expected [96, 64]");
    }

    @Test
    void missingAndUnexpectedTensorsAreErrors() throws Exception {
        Path hf = hf("qwen2");
        editConfig(hf, c -> c.put("attention_bias", false));
        assertThatThrownBy(() -> ModelLoader.load(hf)).hasMessageContaining("unexpected tensor model.layers.")
                .hasMessageContaining("no attention biases");
        editConfig(hf, c -> c.put("num_hidden_layers", 3).remove("attention_bias"));
        assertThatThrownBy(() -> ModelLoader.load(hf)).hasMessageContaining("missing tensor model.layers.2.")
                .hasMessageContaining("expected shape");
        editConfig(hf, c -> c.put("num_hidden_layers", 1));
        assertThatThrownBy(() -> ModelLoader.load(hf)).hasMessageContaining("belongs to layer 1 but the model has 1 layers");
    }

    @Test
    void unsupportedSafetensorsDtypeIsNamed() throws Exception {
        Path hf = hf("llama");
        Path st = hf.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(st);
        long headerLen = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8);
        String changed = header.replaceFirst("\"dtype\":\"F32\"", "\"dtype\":\"I8\" ");
        assertThat(changed).hasSameSizeAs(header);
        System.arraycopy(changed.getBytes(StandardCharsets.UTF_8), 0, bytes, 8, (int) headerLen);
        Files.write(st, bytes);
        assertThatThrownBy(() -> ModelLoader.load(hf))
                .hasMessageContaining("tensor model.embed_tokens.weight has dtype I8; supported: F32, F16, BF16");
    }

    @Test
    void safetensorsHeaderIsPaddedAndReadable() throws Exception {
        Path file = dir.resolve("x.safetensors");
        Safetensors.write(file, List.of(new Safetensors.Data("a", DType.BF16, new long[] {3}, new byte[6]),
                new Safetensors.Data("b", DType.F16, new long[] {2, 2}, new byte[8])), java.util.Map.of("format", "pt"));
        byte[] bytes = Files.readAllBytes(file);
        long headerLen = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(headerLen % 8).isZero();
        assertThat(bytes).hasSize((int) (8 + headerLen + 14));
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            var tensors = Safetensors.map(file, arena);
            assertThat(tensors.keySet()).containsExactly("a", "b");
            assertThat(tensors.get("b").shape()).containsExactly(2, 2);
            assertThat(tensors.get("b").data().byteSize()).isEqualTo(8);
            assertThat(tensors.get("a").dtype()).isEqualTo(DType.BF16);
        }
    }

    @Test
    void directoriesWithoutWeightsOrWithBinCheckpointsAreRefused() throws Exception {
        Path hf = hf("llama");
        Files.delete(hf.resolve("model.safetensors"));
        Files.write(hf.resolve("pytorch_model.bin"), new byte[4]);
        assertThatThrownBy(() -> ModelLoader.load(hf)).hasMessageContaining("no *.safetensors weights")
                .hasMessageContaining("PyTorch .bin checkpoints are not supported");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertThatThrownBy(() -> ModelLoader.load(empty)).hasMessageContaining("not a model directory");
        Path text = Files.writeString(dir.resolve("notes.txt"), "hello");
        assertThatThrownBy(() -> ModelLoader.load(text)).hasMessageContaining("unsupported model file");
        assertThatThrownBy(() -> ModelLoader.load(dir.resolve("missing"))).hasMessageContaining("no such file");
    }

    @Test
    void loaderFindsTheGgufInADirectoryAndReportsIdentity() throws Exception {
        RandomModel.Written w = RandomModel.write(RandomModelSpec.tiny("qwen2").withName("tiny-qwen"), dir,
                Set.of(ModelFormat.GGUF));
        try (LoadedModel byDir = ModelLoader.load(dir); LoadedModel byFile = ModelLoader.load(w.gguf())) {
            assertThat(byDir.name()).isEqualTo("tiny-qwen");
            assertThat(byDir.hash()).isEqualTo(byFile.hash()).hasSize(64).matches("[0-9a-f]{64}");
            assertThat(byDir.id()).isEqualTo("tiny-qwen@" + byDir.hash());
            assertThat(byDir.displayId()).isEqualTo("tiny-qwen@" + byDir.hash().substring(0, 32));
            assertThat(byDir.info().id()).isEqualTo(byDir.id());
            assertThat(byDir.info().maxContext()).isEqualTo(256);
        }
    }

    @Test
    void tokenizerIdsPastVocabSize_areRefusedAtLoad_namingBothNumbersAndFiles() throws Exception {
        Path hf = hf("qwen2");
        JsonObject tokenizer = new JsonObject(Files.readString(hf.resolve("tokenizer.json")));
        tokenizer.getJsonArray("added_tokens").add(new JsonObject().put("id", 600).put("content", "<|extra|>")
                .put("special", true).put("single_word", false).put("lstrip", false).put("rstrip", false)
                .put("normalized", false));
        Files.writeString(hf.resolve("tokenizer.json"), tokenizer.encode());

        assertThatThrownBy(() -> ModelLoader.load(hf)).isInstanceOf(ModelFormatException.class)
                .hasMessage(hf.resolve("tokenizer.json") + " has ids up to 600 but " + hf.resolve("config.json")
                        + " vocab_size is 512");
    }

    @Test
    void bosOrEosIdPastVocabSize_isRefusedAtLoad() throws Exception {
        Path hf = hf("qwen2");
        editConfig(hf, c -> c.put("bos_token_id", 512));
        assertThatThrownBy(() -> ModelLoader.load(hf)).isInstanceOf(ModelFormatException.class)
                .hasMessage(hf.resolve("config.json") + " bos_token_id 512 is outside vocab_size 512");

        editConfig(hf, c -> c.put("bos_token_id", 1).put("eos_token_id", 700));
        assertThatThrownBy(() -> ModelLoader.load(hf)).isInstanceOf(ModelFormatException.class)
                .hasMessage(hf.resolve("config.json") + " eos_token_id 700 is outside vocab_size 512");
    }
}
