package org.cocoonjvm.worker.model;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Tensor names in Hugging Face checkpoints and in GGUF files (llama.cpp's names). */
public final class TensorNames {
    /** A recognised tensor: its kind and layer (-1 for model-wide tensors). */
    public record Ref(TensorKind kind, int layer) {
    }

    private static final Pattern HF_LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");
    private static final Pattern GGUF_LAYER = Pattern.compile("blk\\.(\\d+)\\.(.+)");

    private TensorNames() {
    }

    public static String hf(TensorKind kind, int layer) {
        String p = "model.layers." + layer + ".";
        return switch (kind) {
            case TOKEN_EMBD -> "model.embed_tokens.weight";
            case OUTPUT_NORM -> "model.norm.weight";
            case OUTPUT -> "lm_head.weight";
            case ATTN_NORM -> p + "input_layernorm.weight";
            case WQ -> p + "self_attn.q_proj.weight";
            case WK -> p + "self_attn.k_proj.weight";
            case WV -> p + "self_attn.v_proj.weight";
            case WO -> p + "self_attn.o_proj.weight";
            case BQ -> p + "self_attn.q_proj.bias";
            case BK -> p + "self_attn.k_proj.bias";
            case BV -> p + "self_attn.v_proj.bias";
            case Q_NORM -> p + "self_attn.q_norm.weight";
            case K_NORM -> p + "self_attn.k_norm.weight";
            case FFN_NORM -> p + "post_attention_layernorm.weight";
            case W_GATE -> p + "mlp.gate_proj.weight";
            case W_UP -> p + "mlp.up_proj.weight";
            case W_DOWN -> p + "mlp.down_proj.weight";
        };
    }

    public static String gguf(TensorKind kind, int layer) {
        String p = "blk." + layer + ".";
        return switch (kind) {
            case TOKEN_EMBD -> "token_embd.weight";
            case OUTPUT_NORM -> "output_norm.weight";
            case OUTPUT -> "output.weight";
            case ATTN_NORM -> p + "attn_norm.weight";
            case WQ -> p + "attn_q.weight";
            case WK -> p + "attn_k.weight";
            case WV -> p + "attn_v.weight";
            case WO -> p + "attn_output.weight";
            case BQ -> p + "attn_q.bias";
            case BK -> p + "attn_k.bias";
            case BV -> p + "attn_v.bias";
            case Q_NORM -> p + "attn_q_norm.weight";
            case K_NORM -> p + "attn_k_norm.weight";
            case FFN_NORM -> p + "ffn_norm.weight";
            case W_GATE -> p + "ffn_gate.weight";
            case W_UP -> p + "ffn_up.weight";
            case W_DOWN -> p + "ffn_down.weight";
        };
    }

    /** The kind and layer of a Hugging Face tensor name; null for names this worker does not use. */
    public static Ref parseHf(String name) {
        return parse(name, HF_LAYER, true);
    }

    /** The kind and layer of a GGUF tensor name; null for names this worker does not use. */
    public static Ref parseGguf(String name) {
        return parse(name, GGUF_LAYER, false);
    }

    private static Ref parse(String name, Pattern layerPattern, boolean hf) {
        Matcher m = layerPattern.matcher(name);
        int layer = -1;
        if (m.matches()) {
            try {
                layer = Integer.parseInt(m.group(1));
            } catch (NumberFormatException e) {
                return null;
            }
        }
        for (TensorKind kind : TensorKind.values()) {
            if (kind.perLayer != (layer >= 0)) {
                continue;
            }
            String expected = hf ? hf(kind, Math.max(layer, 0)) : gguf(kind, Math.max(layer, 0));
            if (expected.equals(name)) {
                return new Ref(kind, layer);
            }
        }
        return null;
    }
}
