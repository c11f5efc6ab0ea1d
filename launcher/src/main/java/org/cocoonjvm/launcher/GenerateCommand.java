package org.cocoonjvm.launcher;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import org.cocoonjvm.worker.engine.Tokenizer;
import org.cocoonjvm.worker.kernels.KernelLibrary;
import org.cocoonjvm.worker.kernels.NativeModel;
import org.cocoonjvm.worker.model.LoadedModel;
import org.cocoonjvm.worker.model.ModelLoader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code cocoon generate}: one sequence on the native engine, for checking a model by hand or from scripts. */
@Command(name = "generate", mixinStandardHelpOptions = true, description = "Generate tokens for one prompt on the native engine.")
final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "Hugging Face directory or .gguf file.")
    Path model;

    @Option(names = "--prompt-ids", split = ",", description = "Prompt as token ids, e.g. 1,2,3.")
    List<Integer> promptIds;

    @Option(names = "--prompt", description = "Prompt as text (tokenized as is, no chat template).")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "16", description = "Tokens to generate at most. Default: ${DEFAULT-VALUE}.")
    int maxTokens;

    @Option(names = "--greedy", description = "Greedy decoding (temperature 0). Default unless --temperature is given.")
    boolean greedy;

    @Option(names = "--temperature", defaultValue = "0", description = "Sampling temperature, 0 or more (0: greedy). "
            + "Default: ${DEFAULT-VALUE}.")
    float temperature;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed: the same seed gives the same tokens. "
            + "Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--threads", defaultValue = "0",
            description = "CPU threads, at most " + EngineChoice.MAX_THREADS + "; 0 uses every core. Default: ${DEFAULT-VALUE}.")
    int threads;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if ((promptIds == null) == (prompt == null)) {
            throw new Cocoon.UsageException("give exactly one of --prompt-ids and --prompt");
        }
        Cocoon.UsageException.atLeast("--max-tokens", maxTokens, 1);
        Cocoon.UsageException.checkRange("--threads", threads, 0, EngineChoice.MAX_THREADS);
        if (!(temperature >= 0)) {
            throw new Cocoon.UsageException("--temperature must be 0 or more, got " + temperature);
        }
        if (greedy && temperature != 0) {
            throw new Cocoon.UsageException("--greedy samples at temperature 0: drop it or --temperature " + temperature);
        }
        try (LoadedModel loaded = ModelLoader.load(model)) {
            Tokenizer tokenizer = loaded.tokenizer();
            int[] input = prompt != null ? tokenizer.encode(prompt) : promptIds.stream().mapToInt(Integer::intValue).toArray();
            if (input.length == 0) {
                throw new Cocoon.UsageException("the prompt is empty: generation needs at least one token to follow");
            }
            for (int id : input) {
                if (!loaded.config().hasToken(id)) {
                    throw new Cocoon.UsageException("token id " + id + " is outside the vocabulary (0.." + (loaded.config().vocab() - 1) + ")");
                }
            }
            int total = input.length + maxTokens;
            if (total > loaded.config().maxContext()) {
                throw new Cocoon.UsageException("prompt plus --max-tokens (" + total + ") exceed the context (" + loaded.config().maxContext() + ")");
            }
            List<Integer> out = new ArrayList<>();
            try (NativeModel engine = new NativeModel(KernelLibrary.get(), loaded.weights(), threads,
                    (total + 15) / 16, 16, 1, Math.max(total, 1))) {
                int[] next = new int[1];
                engine.entry(0, 0, 0, input, 0, true, temperature, 0, 0, 0, 0, seed);
                engine.step(1, next, null);
                for (int pos = input.length; ; pos++) {
                    out.add(next[0]);
                    if (out.size() == maxTokens || tokenizer.isEndOfSequence(next[0])) {
                        break;
                    }
                    engine.entry(0, 0, pos, new int[] {next[0]}, 0, true, temperature, 0, 0, 0, 0, seed);
                    engine.step(1, next, null);
                }
            }
            Tokenizer.Decoder decoder = tokenizer.newDecoder();
            StringBuilder text = new StringBuilder();
            out.forEach(id -> text.append(decoder.next(id)));
            if (json) {
                System.out.println(new JsonObject().put("model", loaded.id()).put("backend", KernelLibrary.get().backend())
                        .put("prompt_ids", new JsonArray(Arrays.stream(input).boxed().toList()))
                        .put("token_ids", new JsonArray(out)).put("text", text.toString()).encode());
            } else {
                System.out.println(text);
            }
        }
        return 0;
    }
}
