package org.cocoonjvm.worker.model;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;

/**
 * Builds a Hugging Face {@code tokenizer.json} for a byte-level BPE tokenizer: the file
 * {@link RandomModel} writes, and what a GGUF's {@code tokenizer.ggml.*} metadata is turned into
 * so that both formats tokenize with the same library.
 */
public final class TokenizerJson {
    /** A token matched before pre-tokenization (never split); {@code special} ones are control tokens. */
    public record AddedToken(int id, String content, boolean special) {
    }

    /** Pre-tokenizer flavours, named as llama.cpp's {@code tokenizer.ggml.pre}. */
    public enum PreTokenizer {
        GPT2("gpt-2", ByteLevelBpe.GPT2_PATTERN),
        QWEN2("qwen2", ByteLevelBpe.QWEN2_PATTERN),
        LLAMA3("llama-bpe", ByteLevelBpe.LLAMA3_PATTERN);

        public final String ggufName;
        public final String pattern;

        PreTokenizer(String ggufName, String pattern) {
            this.ggufName = ggufName;
            this.pattern = pattern;
        }

        /** From {@code tokenizer.ggml.pre}; null when unknown. */
        public static PreTokenizer fromGguf(String name) {
            if (name == null) {
                return GPT2;
            }
            return switch (name) {
                case "default", "gpt-2", "gpt2" -> GPT2;
                case "qwen2", "deepseek-r1-qwen" -> QWEN2;
                case "llama-bpe", "llama3", "smaug-bpe" -> LLAMA3;
                default -> null;
            };
        }
    }

    private TokenizerJson() {
    }

    /**
     * @param tokens by id; null entries are ids with no token (unused padding)
     * @param added  every added token; each must also be in {@code tokens} at its id
     * @param bos    id prepended to every plain {@code encode}, or -1 for none
     */
    public static JsonObject build(List<String> tokens, List<String> merges, List<AddedToken> added,
                                   PreTokenizer pre, int bos) {
        JsonArray addedJson = new JsonArray();
        for (AddedToken t : added) {
            addedJson.add(new JsonObject().put("id", t.id()).put("content", t.content()).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", t.special()));
        }
        JsonObject preTokenizer = pre == PreTokenizer.GPT2
                ? byteLevel(true, true)
                : new JsonObject().put("type", "Sequence").put("pretokenizers", new JsonArray()
                        .add(new JsonObject().put("type", "Split").put("pattern", new JsonObject().put("Regex", pre.pattern))
                                .put("behavior", "Isolated").put("invert", false))
                        .add(byteLevel(false, false)));
        JsonObject post;
        if (bos >= 0) {
            String bosText = tokens.get(bos);
            post = new JsonObject().put("type", "TemplateProcessing")
                    .put("single", new JsonArray().add(special(bosText)).add(sequence("A")))
                    .put("pair", new JsonArray().add(special(bosText)).add(sequence("A")).add(special(bosText)).add(sequence("B")))
                    .put("special_tokens", new JsonObject().put(bosText, new JsonObject().put("id", bosText)
                            .put("ids", new JsonArray().add(bos)).put("tokens", new JsonArray().add(bosText))));
        } else {
            post = byteLevel(false, false);
        }
        JsonObject vocab = new JsonObject();
        for (int id = 0; id < tokens.size(); id++) {
            if (tokens.get(id) != null) {
                vocab.put(tokens.get(id), id);
            }
        }
        JsonObject model = new JsonObject().put("type", "BPE").putNull("dropout").putNull("unk_token")
                .putNull("continuing_subword_prefix").putNull("end_of_word_suffix").put("fuse_unk", false)
                .put("byte_fallback", false).put("ignore_merges", false)
                .put("vocab", vocab).put("merges", new JsonArray(new java.util.ArrayList<>(merges)));
        return new JsonObject().put("version", "1.0").putNull("truncation").putNull("padding")
                .put("added_tokens", addedJson).putNull("normalizer").put("pre_tokenizer", preTokenizer)
                .put("post_processor", post).put("decoder", byteLevel(true, true)).put("model", model);
    }

    private static JsonObject byteLevel(boolean trimOffsets, boolean useRegex) {
        return new JsonObject().put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", trimOffsets).put("use_regex", useRegex);
    }

    private static JsonObject special(String id) {
        return new JsonObject().put("SpecialToken", new JsonObject().put("id", id).put("type_id", 0));
    }

    private static JsonObject sequence(String id) {
        return new JsonObject().put("Sequence", new JsonObject().put("id", id).put("type_id", 0));
    }
}
