package org.cocoonjvm.worker.model;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Deterministic random models for tests and demos, in Hugging Face and GGUF form with the same
 * weights and tokenizer. The same spec always gives the same bytes (no timestamps, fixed order).
 *
 * <ul>
 *   <li>Weights: each tensor from its own {@link SplittableRandom} seeded by the spec's seed and
 *       the tensor's HF name; matrices and embeddings N(0, 0.02), norms 1 + N(0, 0.02), biases
 *       N(0, 0.02). Values are rounded to the spec's dtype first, so both files hold the same
 *       numbers (GGUF keeps norms and biases in F32, as llama.cpp does).</li>
 *   <li>Tokenizer: byte-level BPE. Ids 0–255 are the bytes 0–255; then up to 400 merges learnt
 *       from a built-in English text (fewer when {@code vocab} is small); then
 *       {@code <|endoftext|>}, {@code <|im_start|>}, {@code <|im_end|>}. Ids from there up to
 *       {@code vocab} are unused (GGUF lists them as {@code [PADn]}, type UNUSED).</li>
 *   <li>Chat template: Qwen2's ChatML ({@link #CHAT_TEMPLATE}).</li>
 * </ul>
 *
 * Layout: {@code outDir/hf/} (config.json, model.safetensors or model-0000i-of-0000n.safetensors +
 * model.safetensors.index.json, tokenizer.json, tokenizer_config.json, generation_config.json)
 * and {@code outDir/model.gguf}.
 */
public final class RandomModel {
    public static final String HF_DIR = "hf";
    public static final String GGUF_FILE = "model.gguf";
    public static final List<String> SPECIAL_TOKENS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");
    public static final int MIN_VOCAB = 256 + 3;
    static final int MAX_MERGES = 400;

    /** Qwen2-Instruct's template: ChatML, with a default system message when the conversation has none. */
    public static final String CHAT_TEMPLATE = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
            + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
            + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** The text the merges are learnt from. */
    static final String CORPUS = """
            The silk moth spins its cocoon from a single thread. Inside the cocoon the caterpillar changes, \
            and when the time is right the moth comes out and flies away into the night. People have kept \
            silk moths for thousands of years, and the thread they make is still one of the finest in the world.
            A model is a set of numbers. When you ask it a question, it reads your words as tokens, one after \
            another, and it answers with tokens of its own. Each token is a small piece of text: a word, part \
            of a word, a space, or a single letter. The model does not see letters the way we do; it sees the \
            numbers that stand for the pieces.
            In a confidential network, the worker that runs the model proves what it is running before anyone \
            sends it a prompt. The proof names the model by a hash of its files, so the client knows which \
            weights answered. Nobody else can read the prompt or the answer, not even the people who own the \
            machine. The worker is paid for every token it makes, and the price is agreed before the work starts.
            Here are some numbers: 1, 2, 3, 10, 42, 100, 2024, 3.14, and 1000000. Here is some code: \
            for (int i = 0; i < n; i++) { sum += a[i] * b[i]; } return sum;
            Questions and answers: What is the capital of France? The capital of France is Paris. How many days \
            are there in a week? There are seven days in a week. What do bees make? Bees make honey, and they \
            live together in a hive. Where does the sun rise? The sun rises in the east and sets in the west.
            The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. It was the best \
            of times, it was the worst of times. All that glitters is not gold. The early bird catches the worm, \
            but the second mouse gets the cheese. Thank you for reading, and have a good day!
            """;

    /** The tokenizer's vocabulary (by id, without the unused padding ids) and merges. */
    public record Vocabulary(List<String> tokens, List<String> merges, int endOfText, int imStart, int imEnd) {
    }

    /** What {@link #write} produced; paths are null for formats not asked for. */
    public record Written(ModelConfig config, Path hfDir, Path gguf) {
    }

    private RandomModel() {
    }

    public static Vocabulary vocabulary(RandomModelSpec spec) {
        return VOCABULARIES.computeIfAbsent(Math.min(MAX_MERGES, spec.vocab() - MIN_VOCAB), RandomModel::learnVocabulary);
    }

    private static final java.util.concurrent.ConcurrentMap<Integer, Vocabulary> VOCABULARIES =
            new java.util.concurrent.ConcurrentHashMap<>();

    private static Vocabulary learnVocabulary(int merges) {
        ByteLevelBpe.Learned learned = ByteLevelBpe.learn(CORPUS, ByteLevelBpe.GPT2_PATTERN, merges);
        List<String> tokens = new ArrayList<>(learned.tokens());
        int base = tokens.size();
        tokens.addAll(SPECIAL_TOKENS);
        return new Vocabulary(List.copyOf(tokens), learned.merges(), base, base + 1, base + 2);
    }

    public static ModelConfig config(RandomModelSpec s) {
        Vocabulary v = vocabulary(s);
        double theta = s.arch().equals("llama") ? 500000 : 1000000;
        return new ModelConfig(s.arch(), s.layers(), s.hidden(), s.heads(), s.kvHeads(), s.effectiveHeadDim(), s.ffn(),
                s.vocab(), s.maxContext(), 1e-6, theta, s.ropeScaling(), s.tiedEmbeddings(), s.arch().equals("qwen3"),
                s.arch().equals("qwen2"), v.endOfText(), List.of(v.imEnd(), v.endOfText()));
    }

    /**
     * Every tensor's values by Hugging Face name, in the order they are written, already rounded to
     * the spec's dtype (for Q8_0: the values before quantisation).
     */
    public static Map<String, float[]> weights(RandomModelSpec spec) {
        ModelConfig c = config(spec);
        DType element = spec.dtype() == DType.Q8_0 ? DType.F32 : spec.dtype();
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Placed p : order(c)) {
            String name = TensorNames.hf(p.kind, p.layer);
            long[] shape = c.shape(p.kind);
            float[] values = new float[Math.toIntExact(elements(shape))];
            SplittableRandom rng = new SplittableRandom(spec.seed() * 0x9E3779B97F4A7C15L + stableHash(name));
            boolean norm = switch (p.kind) {
                case ATTN_NORM, FFN_NORM, OUTPUT_NORM, Q_NORM, K_NORM -> true;
                default -> false;
            };
            for (int i = 0; i < values.length; i++) {
                float v = (float) ((norm ? 1 : 0) + 0.02 * rng.nextGaussian());
                values[i] = Tensors.roundTo(element, v);
            }
            out.put(name, values);
        }
        return out;
    }

    /** Writes the model; see the class comment for the layout. */
    public static Written write(RandomModelSpec spec, Path outDir, Set<ModelFormat> formats) throws IOException {
        ModelConfig c = config(spec);
        Vocabulary vocab = vocabulary(spec);
        Map<String, float[]> weights = weights(spec);
        Files.createDirectories(outDir);
        Path hf = null;
        Path gguf = null;
        if (formats.contains(ModelFormat.HF)) {
            hf = outDir.resolve(HF_DIR);
            writeHf(spec, c, vocab, weights, hf);
        }
        if (formats.contains(ModelFormat.GGUF)) {
            gguf = outDir.resolve(GGUF_FILE);
            writeGguf(spec, c, vocab, weights, gguf);
        }
        return new Written(c, hf, gguf);
    }

    private static void writeHf(RandomModelSpec spec, ModelConfig c, Vocabulary vocab, Map<String, float[]> weights,
                                Path dir) throws IOException {
        Files.createDirectories(dir);
        DType dtype = spec.dtype() == DType.Q8_0 ? DType.F32 : spec.dtype();
        String torchDtype = switch (dtype) {
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> "float32";
        };
        writeText(dir.resolve("config.json"), HfConfigs.toJson(c, torchDtype).put("_name_or_path", spec.name()).encodePrettily());
        writeText(dir.resolve("generation_config.json"), new JsonObject()
                .put("bos_token_id", vocab.endOfText())
                .put("eos_token_id", new JsonArray().add(vocab.imEnd()).add(vocab.endOfText()))
                .put("do_sample", false).encodePrettily());
        List<Safetensors.Data> data = new ArrayList<>();
        for (Placed p : order(c)) {
            String name = TensorNames.hf(p.kind, p.layer);
            data.add(new Safetensors.Data(name, dtype, c.shape(p.kind), Tensors.encode(dtype, weights.get(name))));
        }
        Map<String, String> meta = Map.of("format", "pt");
        if (spec.shards() == 1) {
            Safetensors.write(dir.resolve("model.safetensors"), data, meta);
        } else {
            JsonObject weightMap = new JsonObject();
            long total = 0;
            int n = spec.shards();
            for (int s = 0; s < n; s++) {
                String file = String.format("model-%05d-of-%05d.safetensors", s + 1, n);
                List<Safetensors.Data> part = data.subList(s * data.size() / n, (s + 1) * data.size() / n);
                Safetensors.write(dir.resolve(file), part, meta);
                for (Safetensors.Data d : part) {
                    weightMap.put(d.name(), file);
                    total += d.bytes().length;
                }
            }
            writeText(dir.resolve(HfModel.INDEX), new JsonObject()
                    .put("metadata", new JsonObject().put("total_size", total))
                    .put("weight_map", weightMap).encodePrettily());
        }
        List<TokenizerJson.AddedToken> added = new ArrayList<>();
        for (int i = 0; i < SPECIAL_TOKENS.size(); i++) {
            added.add(new TokenizerJson.AddedToken(vocab.endOfText() + i, SPECIAL_TOKENS.get(i), true));
        }
        writeText(dir.resolve("tokenizer.json"), TokenizerJson.build(vocab.tokens(), vocab.merges(), added,
                TokenizerJson.PreTokenizer.GPT2, -1).encodePrettily());
        writeText(dir.resolve("tokenizer_config.json"), new JsonObject()
                .put("add_bos_token", false)
                .put("add_prefix_space", false)
                .putNull("bos_token")
                .put("chat_template", CHAT_TEMPLATE)
                .put("clean_up_tokenization_spaces", false)
                .put("eos_token", "<|im_end|>")
                .put("model_max_length", c.maxContext())
                .put("pad_token", "<|endoftext|>")
                .put("tokenizer_class", "PreTrainedTokenizerFast").encodePrettily());
    }

    private static void writeGguf(RandomModelSpec spec, ModelConfig c, Vocabulary vocab, Map<String, float[]> weights,
                                  Path file) throws IOException {
        DType dtype = spec.dtype();
        if (dtype == DType.Q8_0 && (c.hidden() % 32 != 0 || c.ffnHidden() % 32 != 0 || c.qDim() % 32 != 0)) {
            throw new IllegalArgumentException("Q8_0 needs hidden, ffn and heads × head_dim to be multiples of 32");
        }
        GgufWriter w = new GgufWriter();
        GgufModel.putModelMetadata(w, c, spec.name(), GgufModel.fileType(dtype));
        List<String> tokens = new ArrayList<>(vocab.tokens());
        List<Integer> types = new ArrayList<>();
        for (int id = 0; id < tokens.size(); id++) {
            types.add(id >= vocab.endOfText() ? GgufModel.TOKEN_CONTROL : GgufModel.TOKEN_NORMAL);
        }
        for (int id = tokens.size(); id < c.vocab(); id++) {
            tokens.add("[PAD" + id + "]");
            types.add(GgufModel.TOKEN_UNUSED);
        }
        GgufModel.putTokenizer(w, tokens, types, vocab.merges(), TokenizerJson.PreTokenizer.GPT2, vocab.endOfText(),
                vocab.imEnd(), false, CHAT_TEMPLATE);
        if (c.ropeScaling().type() == RopeScaling.Type.LLAMA3) {
            float[] f = GgufModel.llama3RopeFactors(c.ropeScaling(), c.ropeTheta(), c.headDim());
            w.addTensor(GgufModel.ROPE_FREQS, new long[] {f.length}, GgmlType.F32, Tensors.encode(DType.F32, f));
        }
        for (Placed p : order(c)) {
            long[] shape = c.shape(p.kind);
            DType d = p.kind.isVector() ? DType.F32 : dtype;
            byte[] bytes = Tensors.encode(d, weights.get(TensorNames.hf(p.kind, p.layer)));
            if (c.architecture().equals("llama") && GgufModel.isPermuted(p.kind)) {
                int nHead = p.kind == TensorKind.WQ || p.kind == TensorKind.BQ ? c.heads() : c.kvHeads();
                byte[] permuted = new byte[bytes.length];
                GgufModel.permuteRows(java.lang.foreign.MemorySegment.ofArray(bytes),
                        java.lang.foreign.MemorySegment.ofArray(permuted), shape[0], bytes.length / shape[0], nHead, true);
                bytes = permuted;
            }
            w.addTensor(TensorNames.gguf(p.kind, p.layer), shape, GgmlType.of(d), bytes);
        }
        w.write(file);
    }

    private record Placed(TensorKind kind, int layer) {
    }

    /** llama.cpp's tensor order: embedding, each layer's tensors, final norm, output. */
    private static List<Placed> order(ModelConfig c) {
        List<Placed> out = new ArrayList<>();
        out.add(new Placed(TensorKind.TOKEN_EMBD, -1));
        for (int l = 0; l < c.layers(); l++) {
            for (TensorKind k : TensorKind.values()) {
                if (k.perLayer && c.shape(k) != null) {
                    out.add(new Placed(k, l));
                }
            }
        }
        out.add(new Placed(TensorKind.OUTPUT_NORM, -1));
        if (c.shape(TensorKind.OUTPUT) != null) {
            out.add(new Placed(TensorKind.OUTPUT, -1));
        }
        return out;
    }

    private static long elements(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    private static long stableHash(String s) {
        long h = 1125899906842597L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h = 31 * h + b;
        }
        return h;
    }

    private static void writeText(Path file, String text) throws IOException {
        String unix = text.replace("\r\n", "\n"); // pretty-printing uses the platform's line separator
        Files.writeString(file, unix.endsWith("\n") ? unix : unix + "\n", StandardCharsets.UTF_8);
    }
}
