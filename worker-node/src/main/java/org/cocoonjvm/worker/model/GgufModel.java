package org.cocoonjvm.worker.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Llama / Qwen2 / Qwen3 models in GGUF, as llama.cpp's {@code convert_hf_to_gguf.py} writes them:
 * metadata to {@link ModelConfig}, tensors to {@link ModelWeights} in Hugging Face layout, and the
 * {@code tokenizer.ggml.*} vocabulary to an equivalent {@code tokenizer.json}; and the reverse for
 * writing.
 *
 * <p><b>The llama Q/K permutation.</b> Hugging Face's Llama applies RoPE to the two halves of each
 * head ({@code rotate_half}: dimension i pairs with i + head_dim/2). llama.cpp's "normal" RoPE, used
 * for architecture {@code llama}, pairs adjacent dimensions (2i with 2i+1). So its converter
 * permutes the rows of {@code attn_q} and {@code attn_k} (weights and biases) within each head:
 * GGUF row {@code 2j + s} is HF row {@code s * head_dim/2 + j} (s = 0, 1), with the query head count
 * for Q and the KV head count for K. Reading a llama-architecture GGUF undoes this, so the weights
 * come out exactly as in the HF checkpoint; writing one applies it, so files work in llama.cpp.
 * Qwen2 and Qwen3 use llama.cpp's NEOX RoPE (the HF pairing), and their GGUFs are not permuted.
 */
public final class GgufModel {
    /** Token types in {@code tokenizer.ggml.token_type}. */
    public static final int TOKEN_NORMAL = 1;
    public static final int TOKEN_UNKNOWN = 2;
    public static final int TOKEN_CONTROL = 3;
    public static final int TOKEN_USER_DEFINED = 4;
    public static final int TOKEN_UNUSED = 5;
    public static final int TOKEN_BYTE = 6;

    /** Special tokens llama.cpp also treats as end of generation when the file names another EOS. */
    static final List<String> END_OF_GENERATION = List.of(
            "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|end|>", "<end_of_turn>");

    /** Our own keys for Llama 3 RoPE scaling (llama.cpp itself only stores rope_freqs.weight). */
    static final String LLAMA3_KEYS = "cocoon.rope.llama3.";
    static final String ROPE_FREQS = "rope_freqs.weight";

    private GgufModel() {
    }

    // ---------------------------------------------------------------- reading

    public static ModelConfig config(GgufFile f) {
        String src = f.path().toString();
        String arch = string(f, "general.architecture", null);
        if (arch == null) {
            throw new ModelFormatException(src + ": GGUF has no general.architecture");
        }
        if (!List.of("llama", "qwen2", "qwen3").contains(arch)) {
            throw new ModelFormatException(src + ": unsupported GGUF architecture '" + arch + "' (llama, qwen2, qwen3)");
        }
        int layers = (int) integer(f, arch + ".block_count", -1);
        int hidden = (int) integer(f, arch + ".embedding_length", -1);
        int ffn = (int) integer(f, arch + ".feed_forward_length", -1);
        int heads = (int) integer(f, arch + ".attention.head_count", -1);
        int kvHeads = (int) integer(f, arch + ".attention.head_count_kv", heads);
        int headDim = (int) integer(f, arch + ".attention.key_length", heads > 0 ? hidden / heads : -1);
        long valueLength = integer(f, arch + ".attention.value_length", headDim);
        if (valueLength != headDim) {
            throw new ModelFormatException(src + ": attention.value_length " + valueLength + " differs from key_length " + headDim);
        }
        int maxContext = (int) integer(f, arch + ".context_length", -1);
        for (String k : List.of("block_count", "embedding_length", "feed_forward_length", "attention.head_count", "context_length")) {
            if (f.get(arch + "." + k) == null) {
                throw new ModelFormatException(src + ": GGUF metadata has no " + arch + "." + k);
            }
        }
        GgufFile.Value tokens = f.get("tokenizer.ggml.tokens");
        GgufFile.TensorInfo embd = f.tensor(TensorNames.gguf(TensorKind.TOKEN_EMBD, 0));
        long vocab = integer(f, arch + ".vocab_size",
                tokens != null ? tokens.asList().size() : embd != null ? embd.shape()[0] : -1);
        double eps = number(f, arch + ".attention.layer_norm_rms_epsilon", 1e-6);
        double theta = number(f, arch + ".rope.freq_base", 10000);
        boolean tied = f.tensor(TensorNames.gguf(TensorKind.OUTPUT, 0)) == null;
        boolean bias = f.tensor(TensorNames.gguf(TensorKind.BQ, 0)) != null;
        int bos = (int) integer(f, "tokenizer.ggml.bos_token_id", -1);
        Set<Integer> eos = new LinkedHashSet<>();
        for (String k : List.of("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")) {
            long id = integer(f, k, -1);
            if (id >= 0) {
                eos.add((int) id);
            }
        }
        if (tokens != null) {
            List<Object> texts = tokens.asList();
            List<Object> types = f.get("tokenizer.ggml.token_type") == null ? null : f.get("tokenizer.ggml.token_type").asList();
            for (int id = 0; id < texts.size(); id++) {
                boolean control = types == null || ((Number) types.get(id)).intValue() == TOKEN_CONTROL;
                if (control && END_OF_GENERATION.contains((String) texts.get(id))) {
                    eos.add(id);
                }
            }
        }
        try {
            ModelConfig partial = new ModelConfig(arch, layers, hidden, heads, kvHeads, headDim, ffn, (int) vocab, maxContext,
                    eps, theta, RopeScaling.NONE, tied, arch.equals("qwen3"), bias, bos, List.copyOf(eos));
            RopeScaling scaling = ropeScaling(f, partial);
            return new ModelConfig(arch, layers, hidden, heads, kvHeads, headDim, ffn, (int) vocab, maxContext,
                    eps, theta, scaling, tied, arch.equals("qwen3"), bias, bos, List.copyOf(eos));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(src + ": " + e.getMessage(), e);
        }
    }

    private static RopeScaling ropeScaling(GgufFile f, ModelConfig c) {
        String arch = c.architecture();
        String src = f.path().toString();
        String type = string(f, arch + ".rope.scaling.type", null);
        if (type != null && !type.equals("none")) {
            if (type.equals("linear")) {
                return new RopeScaling(RopeScaling.Type.LINEAR, number(f, arch + ".rope.scaling.factor", 1), 1, 1, 0);
            }
            throw new ModelFormatException(src + ": unsupported rope scaling type '" + type + "' (supported: linear, and Llama 3's rope_freqs)");
        }
        if (f.get(arch + ".rope.scale_linear") != null) {
            return new RopeScaling(RopeScaling.Type.LINEAR, number(f, arch + ".rope.scale_linear", 1), 1, 1, 0);
        }
        GgufFile.TensorInfo freqs = f.tensor(ROPE_FREQS);
        if (freqs == null) {
            return RopeScaling.NONE;
        }
        // llama.cpp stores Llama 3 scaling only as per-frequency factors. Take the parameters from our
        // own keys when present, else Llama 3.1's (low 1, high 4, original context 8192) with the
        // largest factor, and accept them only if they reproduce the stored factors.
        float[] stored = Tensors.toFloats(new Tensor(ROPE_FREQS, GgmlType.require(freqs), freqs.shape(), f.data(freqs)));
        float max = 1;
        for (float v : stored) {
            max = Math.max(max, v);
        }
        RopeScaling r = new RopeScaling(RopeScaling.Type.LLAMA3,
                number(f, LLAMA3_KEYS + "factor", max),
                number(f, LLAMA3_KEYS + "low_freq_factor", 1),
                number(f, LLAMA3_KEYS + "high_freq_factor", 4),
                (int) integer(f, LLAMA3_KEYS + "original_context_length", 8192));
        float[] expected = llama3RopeFactors(r, c.ropeTheta(), c.headDim());
        boolean match = expected.length == stored.length;
        for (int i = 0; match && i < stored.length; i++) {
            match = Math.abs(expected[i] - stored[i]) <= 1e-3 * Math.max(1, Math.abs(stored[i]));
        }
        if (!match) {
            throw new ModelFormatException(src + ": rope_freqs.weight does not match Llama 3 RoPE scaling; "
                    + "other frequency-factor schemes are not supported");
        }
        return r;
    }

    /** Llama 3's per-frequency RoPE factors, as llama.cpp's converter computes rope_freqs.weight. */
    public static float[] llama3RopeFactors(RopeScaling r, double theta, int headDim) {
        float[] out = new float[headDim / 2];
        double lowWavelen = r.originalMaxContext() / r.lowFreqFactor();
        double highWavelen = r.originalMaxContext() / r.highFreqFactor();
        for (int i = 0; i < out.length; i++) {
            double freq = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) {
                out[i] = 1;
            } else if (wavelen > lowWavelen) {
                out[i] = (float) r.factor();
            } else {
                double smooth = (r.originalMaxContext() / wavelen - r.lowFreqFactor()) / (r.highFreqFactor() - r.lowFreqFactor());
                out[i] = (float) (1 / ((1 - smooth) / r.factor() + smooth));
            }
        }
        return out;
    }

    /** The tensors, in Hugging Face layout (llama Q/K rows un-permuted into copies held by {@code arena}). */
    public static MappedModelWeights weights(GgufFile f, ModelConfig c, Arena arena) {
        String src = f.path().toString();
        Map<TensorNames.Ref, Tensor> found = new LinkedHashMap<>();
        for (GgufFile.TensorInfo info : f.tensors()) {
            TensorNames.Ref ref = TensorNames.parseGguf(info.name());
            if (ref == null) {
                continue;
            }
            DType dtype;
            try {
                dtype = GgmlType.require(info);
            } catch (ModelFormatException e) {
                throw new ModelFormatException(src + ": " + e.getMessage(), e);
            }
            if (dtype == DType.Q8_0 && info.dims()[0] % Tensors.Q8_0_BLOCK != 0) {
                throw new ModelFormatException(src + ": tensor " + info.name() + " is Q8_0 but its rows have "
                        + info.dims()[0] + " elements (not a multiple of 32)");
            }
            MemorySegment data = f.data(info);
            long[] shape = info.shape();
            if (c.architecture().equals("llama") && isPermuted(ref.kind())) {
                int nHead = ref.kind() == TensorKind.WQ || ref.kind() == TensorKind.BQ ? c.heads() : c.kvHeads();
                long rows = shape[0];
                if (rows % (2L * nHead) != 0) {
                    throw new ModelFormatException(src + ": tensor " + info.name() + " has " + rows + " rows, not a multiple of 2 × "
                            + nHead + " heads");
                }
                MemorySegment copy = arena.allocate(data.byteSize(), 64);
                permuteRows(data, copy, rows, data.byteSize() / rows, nHead, false);
                data = copy;
            }
            if (found.put(ref, new Tensor(info.name(), dtype, shape, data)) != null) {
                throw new ModelFormatException(src + ": tensor " + info.name() + " appears twice");
            }
        }
        return new MappedModelWeights(c, arena, found, TensorNames::gguf, src);
    }

    static boolean isPermuted(TensorKind kind) {
        return kind == TensorKind.WQ || kind == TensorKind.WK || kind == TensorKind.BQ || kind == TensorKind.BK;
    }

    /**
     * llama.cpp's llama Q/K row permutation, per head of {@code rows / nHead} rows:
     * GGUF row {@code 2j + s} = HF row {@code s * half + j}. {@code toGguf} applies it; otherwise undoes it.
     */
    public static void permuteRows(MemorySegment src, MemorySegment dst, long rows, long rowBytes, int nHead, boolean toGguf) {
        long headDim = rows / nHead;
        long half = headDim / 2;
        for (long h = 0; h < nHead; h++) {
            for (long j = 0; j < half; j++) {
                for (long s = 0; s < 2; s++) {
                    long hfRow = h * headDim + s * half + j;
                    long ggufRow = h * headDim + 2 * j + s;
                    long from = (toGguf ? hfRow : ggufRow) * rowBytes;
                    long to = (toGguf ? ggufRow : hfRow) * rowBytes;
                    MemorySegment.copy(src, from, dst, to, rowBytes);
                }
            }
        }
    }

    /** An equivalent Hugging Face tokenizer.json for the file's byte-level BPE vocabulary. */
    public static String tokenizerJson(GgufFile f) {
        String src = f.path().toString();
        String model = string(f, "tokenizer.ggml.model", null);
        if (model == null) {
            throw new ModelFormatException(src + ": GGUF has no tokenizer (tokenizer.ggml.model)");
        }
        if (!model.equals("gpt2")) {
            throw new ModelFormatException(src + ": GGUF tokenizer model '" + model
                    + "' is not supported; only byte-level BPE ('gpt2', as Llama 3 and Qwen use)");
        }
        String preName = string(f, "tokenizer.ggml.pre", null);
        TokenizerJson.PreTokenizer pre = TokenizerJson.PreTokenizer.fromGguf(preName);
        if (pre == null) {
            throw new ModelFormatException(src + ": GGUF pre-tokenizer '" + preName + "' is not supported (gpt-2, qwen2, llama-bpe)");
        }
        List<Object> texts = require(f, "tokenizer.ggml.tokens").asList();
        GgufFile.Value typesValue = f.get("tokenizer.ggml.token_type");
        List<Object> types = typesValue == null ? null : typesValue.asList();
        if (types != null && types.size() != texts.size()) {
            throw new ModelFormatException(src + ": tokenizer.ggml.token_type has " + types.size() + " entries for "
                    + texts.size() + " tokens");
        }
        List<String> tokens = new ArrayList<>();
        List<TokenizerJson.AddedToken> added = new ArrayList<>();
        for (int id = 0; id < texts.size(); id++) {
            String text = (String) texts.get(id);
            int type = types == null ? TOKEN_NORMAL : ((Number) types.get(id)).intValue();
            tokens.add(type == TOKEN_UNUSED ? null : text);
            if (type == TOKEN_CONTROL || type == TOKEN_USER_DEFINED) {
                added.add(new TokenizerJson.AddedToken(id, text, type == TOKEN_CONTROL));
            }
        }
        List<String> merges = new ArrayList<>();
        GgufFile.Value mergesValue = f.get("tokenizer.ggml.merges");
        if (mergesValue != null) {
            for (Object m : mergesValue.asList()) {
                merges.add((String) m);
            }
        }
        boolean addBos = f.get("tokenizer.ggml.add_bos_token") != null
                && Boolean.TRUE.equals(f.get("tokenizer.ggml.add_bos_token").value());
        int bos = (int) integer(f, "tokenizer.ggml.bos_token_id", -1);
        return TokenizerJson.build(tokens, merges, added, pre, addBos ? bos : -1).encode();
    }

    /** The text of a token id, or null. */
    public static String tokenText(GgufFile f, long id) {
        GgufFile.Value tokens = f.get("tokenizer.ggml.tokens");
        return tokens == null || id < 0 || id >= tokens.asList().size() ? null : (String) tokens.asList().get((int) id);
    }

    // ---------------------------------------------------------------- writing

    /**
     * The model's metadata the way llama.cpp's converter writes it. For Llama 3 RoPE scaling the
     * caller must also add {@link #ROPE_FREQS} (see {@link #llama3RopeFactors}).
     */
    public static void putModelMetadata(GgufWriter w, ModelConfig c, String name, int fileType) {
        String a = c.architecture();
        w.putString("general.architecture", a);
        w.putString("general.name", name);
        w.putUint32("general.file_type", fileType);
        w.putUint32(a + ".vocab_size", c.vocab());
        w.putUint32(a + ".context_length", c.maxContext());
        w.putUint32(a + ".embedding_length", c.hidden());
        w.putUint32(a + ".block_count", c.layers());
        w.putUint32(a + ".feed_forward_length", c.ffnHidden());
        w.putUint32(a + ".attention.head_count", c.heads());
        w.putUint32(a + ".attention.head_count_kv", c.kvHeads());
        w.putUint32(a + ".attention.key_length", c.headDim());
        w.putUint32(a + ".attention.value_length", c.headDim());
        w.putUint32(a + ".rope.dimension_count", c.headDim());
        w.putFloat32(a + ".rope.freq_base", c.ropeTheta());
        w.putFloat32(a + ".attention.layer_norm_rms_epsilon", c.rmsEps());
        RopeScaling r = c.ropeScaling();
        switch (r.type()) {
            case NONE -> { }
            case LINEAR -> {
                w.putString(a + ".rope.scaling.type", "linear");
                w.putFloat32(a + ".rope.scaling.factor", r.factor());
            }
            case LLAMA3 -> {
                w.putFloat32(LLAMA3_KEYS + "factor", r.factor());
                w.putFloat32(LLAMA3_KEYS + "low_freq_factor", r.lowFreqFactor());
                w.putFloat32(LLAMA3_KEYS + "high_freq_factor", r.highFreqFactor());
                w.putUint32(LLAMA3_KEYS + "original_context_length", r.originalMaxContext());
            }
        }
    }

    /**
     * A byte-level BPE tokenizer as {@code tokenizer.ggml.*}.
     *
     * @param tokens by id, padded to the model's vocab; {@code types} gives each one's token type
     */
    public static void putTokenizer(GgufWriter w, List<String> tokens, List<Integer> types, List<String> merges,
                                    TokenizerJson.PreTokenizer pre, int bos, int eos, boolean addBos, String chatTemplate) {
        w.putString("tokenizer.ggml.model", "gpt2");
        w.putString("tokenizer.ggml.pre", pre.ggufName);
        w.put("tokenizer.ggml.tokens", GgufFile.Value.array(GgufFile.ValueType.STRING, tokens));
        List<Long> typeValues = new ArrayList<>();
        for (int t : types) {
            typeValues.add((long) t);
        }
        w.put("tokenizer.ggml.token_type", GgufFile.Value.array(GgufFile.ValueType.INT32, typeValues));
        w.put("tokenizer.ggml.merges", GgufFile.Value.array(GgufFile.ValueType.STRING, merges));
        if (bos >= 0) {
            w.putUint32("tokenizer.ggml.bos_token_id", bos);
        }
        if (eos >= 0) {
            w.putUint32("tokenizer.ggml.eos_token_id", eos);
        }
        w.putBool("tokenizer.ggml.add_bos_token", addBos);
        if (chatTemplate != null) {
            w.putString("tokenizer.chat_template", chatTemplate);
        }
    }

    /** ggml's {@code general.file_type} for a model whose matrices are {@code dtype}. */
    public static int fileType(DType dtype) {
        return switch (dtype) {
            case F32 -> 0;
            case F16 -> 1;
            case Q8_0 -> 7;
            case BF16 -> 32;
        };
    }

    // ---------------------------------------------------------------- metadata helpers

    private static GgufFile.Value require(GgufFile f, String key) {
        GgufFile.Value v = f.get(key);
        if (v == null) {
            throw new ModelFormatException(f.path() + ": GGUF metadata has no " + key);
        }
        return v;
    }

    private static String string(GgufFile f, String key, String fallback) {
        GgufFile.Value v = f.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return v.asString();
        } catch (IllegalStateException e) {
            throw new ModelFormatException(f.path() + ": GGUF key " + key + " should be a string, is " + v);
        }
    }

    private static long integer(GgufFile f, String key, long fallback) {
        GgufFile.Value v = f.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return v.asLong();
        } catch (IllegalStateException e) {
            throw new ModelFormatException(f.path() + ": GGUF key " + key + " should be an integer, is " + v);
        }
    }

    private static double number(GgufFile f, String key, double fallback) {
        GgufFile.Value v = f.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return v.asDouble();
        } catch (IllegalStateException e) {
            throw new ModelFormatException(f.path() + ": GGUF key " + key + " should be a number, is " + v);
        }
    }
}
