package org.cocoonjvm.worker.model;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Hugging Face {@code config.json} (and {@code generation_config.json}) to and from {@link ModelConfig}. */
public final class HfConfigs {
    private static final Map<String, String> ARCHITECTURES = Map.of(
            "LlamaForCausalLM", "llama", "Qwen2ForCausalLM", "qwen2", "Qwen3ForCausalLM", "qwen3");
    private static final Map<String, String> CLASS_NAMES = Map.of(
            "llama", "LlamaForCausalLM", "qwen2", "Qwen2ForCausalLM", "qwen3", "Qwen3ForCausalLM");

    private HfConfigs() {
    }

    /**
     * @param config     config.json
     * @param generation generation_config.json, or null; its eos ids join config.json's, and its bos
     *                   id is used when config.json has none
     * @param source     for error messages
     */
    public static ModelConfig parse(JsonObject config, JsonObject generation, String source) {
        String arch = architecture(config, source);
        int hidden = required(config, "hidden_size", source);
        int heads = required(config, "num_attention_heads", source);
        int kvHeads = optInt(config, "num_key_value_heads", heads);
        int headDim = optInt(config, "head_dim", hidden / heads);
        int layers = required(config, "num_hidden_layers", source);
        int ffn = required(config, "intermediate_size", source);
        int vocab = required(config, "vocab_size", source);
        int maxContext = optInt(config, "max_position_embeddings", arch.equals("llama") ? 2048 : 32768);
        double eps = optDouble(config, "rms_norm_eps", 1e-6);
        JsonObject ropeParams = config.getValue("rope_parameters") instanceof JsonObject o ? o : null;
        double theta = optDouble(config, "rope_theta",
                ropeParams != null ? optDouble(ropeParams, "rope_theta", 10000) : 10000);
        RopeScaling scaling = ropeScaling(config.getValue("rope_scaling") instanceof JsonObject o ? o : ropeParams, source);
        boolean tied = optBool(config, "tie_word_embeddings", false);
        boolean bias = optBool(config, "attention_bias", arch.equals("qwen2"));
        boolean qkNorm = arch.equals("qwen3");

        int bos = tokenIds(config.getValue("bos_token_id")).stream().findFirst().orElse(-1);
        Set<Integer> eos = new LinkedHashSet<>(tokenIds(config.getValue("eos_token_id")));
        if (generation != null) {
            if (bos < 0) {
                bos = tokenIds(generation.getValue("bos_token_id")).stream().findFirst().orElse(-1);
            }
            eos.addAll(tokenIds(generation.getValue("eos_token_id")));
        }
        try {
            return new ModelConfig(arch, layers, hidden, heads, kvHeads, headDim, ffn, vocab, maxContext, eps, theta,
                    scaling, tied, qkNorm, bias, bos, List.copyOf(eos));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(source + ": " + e.getMessage(), e);
        }
    }

    /** config.json for a model, in the field order transformers writes. */
    public static JsonObject toJson(ModelConfig c, String torchDtype) {
        JsonObject o = new JsonObject()
                .put("architectures", new JsonArray().add(CLASS_NAMES.get(c.architecture())))
                .put("model_type", c.architecture())
                .put("hidden_act", "silu")
                .put("hidden_size", c.hidden())
                .put("intermediate_size", c.ffnHidden())
                .put("num_hidden_layers", c.layers())
                .put("num_attention_heads", c.heads())
                .put("num_key_value_heads", c.kvHeads());
        if (c.architecture().equals("qwen3") || c.headDim() != c.hidden() / c.heads()) {
            o.put("head_dim", c.headDim());
        }
        o.put("vocab_size", c.vocab())
                .put("max_position_embeddings", c.maxContext())
                .put("rms_norm_eps", c.rmsEps())
                .put("rope_theta", c.ropeTheta());
        RopeScaling r = c.ropeScaling();
        switch (r.type()) {
            case NONE -> o.putNull("rope_scaling");
            case LINEAR -> o.put("rope_scaling", new JsonObject().put("rope_type", "linear").put("factor", r.factor()));
            case LLAMA3 -> o.put("rope_scaling", new JsonObject().put("rope_type", "llama3").put("factor", r.factor())
                    .put("low_freq_factor", r.lowFreqFactor()).put("high_freq_factor", r.highFreqFactor())
                    .put("original_max_position_embeddings", r.originalMaxContext()));
        }
        o.put("tie_word_embeddings", c.tiedEmbeddings());
        if (!c.architecture().equals("qwen2") || !c.attentionBias()) {
            o.put("attention_bias", c.attentionBias());
        }
        if (c.bosToken() >= 0) {
            o.put("bos_token_id", c.bosToken());
        }
        if (!c.eosTokens().isEmpty()) {
            o.put("eos_token_id", c.eosTokens().getFirst());
        }
        return o.put("torch_dtype", torchDtype);
    }

    private static String architecture(JsonObject config, String source) {
        JsonArray archs = config.getValue("architectures") instanceof JsonArray a ? a : new JsonArray();
        for (Object a : archs) {
            String arch = ARCHITECTURES.get(String.valueOf(a));
            if (arch != null) {
                return arch;
            }
        }
        Object modelType = config.getValue("model_type");
        if (archs.isEmpty() && modelType != null && CLASS_NAMES.containsKey(modelType.toString())) {
            return modelType.toString();
        }
        throw new ModelFormatException(source + ": unsupported architecture " + (archs.isEmpty() ? modelType : archs)
                + " (supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
    }

    private static RopeScaling ropeScaling(JsonObject o, String source) {
        if (o == null) {
            return RopeScaling.NONE;
        }
        Object t = o.getValue("rope_type") != null ? o.getValue("rope_type") : o.getValue("type");
        String type = t == null ? "default" : t.toString();
        return switch (type) {
            case "default" -> RopeScaling.NONE;
            case "linear" -> new RopeScaling(RopeScaling.Type.LINEAR, optDouble(o, "factor", 1), 1, 1, 0);
            case "llama3" -> new RopeScaling(RopeScaling.Type.LLAMA3, optDouble(o, "factor", 8),
                    optDouble(o, "low_freq_factor", 1), optDouble(o, "high_freq_factor", 4),
                    optInt(o, "original_max_position_embeddings", 8192));
            default -> throw new ModelFormatException(source + ": unsupported rope_scaling type '" + type
                    + "' (supported: linear, llama3)");
        };
    }

    static List<Integer> tokenIds(Object value) {
        List<Integer> out = new ArrayList<>();
        if (value instanceof Number n) {
            out.add(n.intValue());
        } else if (value instanceof JsonArray a) {
            for (Object v : a) {
                if (v instanceof Number n) {
                    out.add(n.intValue());
                }
            }
        }
        return out;
    }

    private static int required(JsonObject o, String key, String source) {
        if (!(o.getValue(key) instanceof Number n)) {
            throw new ModelFormatException(source + ": config.json has no numeric '" + key + "'");
        }
        return n.intValue();
    }

    private static int optInt(JsonObject o, String key, int fallback) {
        return o.getValue(key) instanceof Number n ? n.intValue() : fallback;
    }

    private static double optDouble(JsonObject o, String key, double fallback) {
        return o.getValue(key) instanceof Number n ? n.doubleValue() : fallback;
    }

    private static boolean optBool(JsonObject o, String key, boolean fallback) {
        return o.getValue(key) instanceof Boolean b ? b : fallback;
    }
}
