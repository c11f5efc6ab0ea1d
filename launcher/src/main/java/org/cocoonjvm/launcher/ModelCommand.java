package org.cocoonjvm.launcher;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import org.cocoonjvm.worker.model.DType;
import org.cocoonjvm.worker.model.LoadedModel;
import org.cocoonjvm.worker.model.ModelFormat;
import org.cocoonjvm.worker.model.ModelLoader;
import org.cocoonjvm.worker.model.RandomModel;
import org.cocoonjvm.worker.model.RandomModelSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code cocoon model …}: tools for model files. */
@Command(name = "model", mixinStandardHelpOptions = true, description = "Model file tools.",
        subcommands = {ModelCommand.Random.class, ModelCommand.Hash.class})
final class ModelCommand {

    /** {@code cocoon model random}: a deterministic random-weight model, for tests and the demo. */
    @Command(name = "random", mixinStandardHelpOptions = true,
            description = "Write a deterministic random-weight model (with a small byte-level BPE tokenizer).")
    static final class Random implements Callable<Integer> {
        @Option(names = "--arch", defaultValue = "qwen2", description = "llama | qwen2 | qwen3. Default: ${DEFAULT-VALUE}.")
        String arch;
        @Option(names = "--layers", required = true, description = "Transformer layers.") int layers;
        @Option(names = "--hidden", required = true, description = "Hidden size (model width).") int hidden;
        @Option(names = "--heads", required = true, description = "Query heads; a multiple of --kv-heads.") int heads;
        @Option(names = "--kv-heads", required = true, description = "Key/value heads.") int kvHeads;
        @Option(names = "--ffn", required = true, description = "Feed-forward (MLP) hidden size.") int ffn;
        @Option(names = "--vocab", required = true,
                description = "Vocabulary size, at least " + RandomModel.MIN_VOCAB + " (256 bytes and 3 special tokens).")
        int vocab;
        @Option(names = "--seed", defaultValue = "42", description = "Seed of the weights and the tokenizer's merges. "
                + "Default: ${DEFAULT-VALUE}.") long seed;
        @Option(names = "--head-dim", defaultValue = "0", description = "Even; 0: hidden / heads. Default: ${DEFAULT-VALUE}.")
        int headDim;
        @Option(names = "--context", defaultValue = "4096", description = "Context length (max_position_embeddings). "
                + "Default: ${DEFAULT-VALUE}.") int context;
        @Option(names = "--dtype", defaultValue = "f16", description = "f32 | f16 | bf16 | q8_0 (q8_0: GGUF only). Default: ${DEFAULT-VALUE}.")
        String dtype;
        @Option(names = "--tied", defaultValue = "false", description = "Tie the output projection to the embedding.")
        boolean tied;
        @Option(names = "--out", required = true, description = "Directory to write into (created if absent).") Path out;
        @Option(names = "--format", defaultValue = "hf,gguf", split = ",", description = "hf, gguf or both. Default: ${DEFAULT-VALUE}.")
        List<String> formats;

        @Override
        public Integer call() throws Exception {
            Set<ModelFormat> wanted = EnumSet.noneOf(ModelFormat.class);
            for (String f : formats) {
                switch (f.toLowerCase(Locale.ROOT)) {
                    case "hf" -> wanted.add(ModelFormat.HF);
                    case "gguf" -> wanted.add(ModelFormat.GGUF);
                    default -> throw new Cocoon.UsageException("--format takes hf and/or gguf, got '" + f + "'");
                }
            }
            DType weights = parseDtype(dtype);
            if (weights == DType.Q8_0 && wanted.contains(ModelFormat.HF)) {
                throw new Cocoon.UsageException("--dtype q8_0 is GGUF only: give --format gguf, or another --dtype for hf");
            }
            RandomModel.Written written;
            try {
                written = RandomModel.write(RandomModelSpec.of(arch, layers, hidden, heads, kvHeads, ffn, vocab, seed,
                        weights, context).withHeadDim(headDim).withTiedEmbeddings(tied), out, wanted);
            } catch (IllegalArgumentException e) {
                // The spec and the model's config check the shape the options give, naming each value.
                throw new Cocoon.UsageException(e.getMessage());
            }
            JsonObject result = new JsonObject().put("arch", arch);
            if (written.hfDir() != null) {
                result.put("hf", written.hfDir().toString()).put("hf_id", idOf(written.hfDir()));
            }
            if (written.gguf() != null) {
                result.put("gguf", written.gguf().toString()).put("gguf_id", idOf(written.gguf()));
            }
            System.out.println(result.encode());
            return 0;
        }
    }

    /** {@code cocoon model hash}: the model's identity, as workers announce it. */
    @Command(name = "hash", mixinStandardHelpOptions = true, description = "Print name@hash of a model directory or GGUF file.")
    static final class Hash implements Callable<Integer> {
        @Option(names = "--model", required = true, description = "Hugging Face directory or .gguf file.") Path model;

        @Override
        public Integer call() throws Exception {
            System.out.println(idOf(model));
            return 0;
        }
    }

    static String idOf(Path path) throws Exception {
        try (LoadedModel m = ModelLoader.load(path)) {
            return m.id();
        }
    }

    static DType parseDtype(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "f32" -> DType.F32;
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            case "q8_0" -> DType.Q8_0;
            default -> throw new Cocoon.UsageException("--dtype must be f32, f16, bf16 or q8_0, got '" + name + "'");
        };
    }
}
