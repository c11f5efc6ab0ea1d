package org.cocoonjvm.worker.bench;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.ModelParameters;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.cocoonjvm.worker.kernels.KernelLibrary;
import org.cocoonjvm.worker.kernels.NativeModel;
import org.cocoonjvm.worker.model.LoadedModel;
import org.cocoonjvm.worker.model.ModelLoader;

/**
 * Batch-1 decode tokens/s of Cocoon's native engine and of llama.cpp (the CPU build inside the
 * {@code de.kherud:llama} jar) on the same GGUF file with the same thread count, run side by side
 * in one process, alternating, so machine noise hits both. Not a test: run it as
 * docs/benchmarks.md says and record the output there.
 *
 * <p>Arguments: {@code GGUF_PATH THREADS PROMPT_TOKENS DECODE_TOKENS ROUNDS}.
 */
public final class DecodePeerBenchmark {
    public static void main(String[] args) throws Exception {
        Path gguf = Path.of(args[0]);
        int threads = Integer.parseInt(args[1]);
        int promptTokens = Integer.parseInt(args[2]);
        int decodeTokens = Integer.parseInt(args[3]);
        int rounds = Integer.parseInt(args[4]);
        // de.kherud:llama deletes llama*/jllama* entries from its temp dir when it loads: give it its own.
        System.setProperty("de.kherud.llama.tmpdir", Files.createTempDirectory("cocoon-llamacpp-").toString());

        double[] cocoon = new double[rounds];
        double[] llamaCpp = new double[rounds];
        String backend;
        try (LoadedModel model = ModelLoader.load(gguf);
             LlamaModel peer = new LlamaModel(new ModelParameters().setModel(gguf.toString()).setThreads(threads)
                     .setThreadsBatch(threads).setCtxSize(promptTokens + decodeTokens + 16).setGpuLayers(0).disableLog())) {
            backend = KernelLibrary.get().backend();
            int[] prompt = new SplittableRandom(1).ints(promptTokens, 300, Math.min(model.config().vocab(), 4000)).toArray();
            String promptText = peer.decode(prompt);
            for (int r = 0; r < rounds; r++) {
                cocoon[r] = cocoonDecode(model, threads, prompt, decodeTokens);
                llamaCpp[r] = llamaCppDecode(peer, promptText, decodeTokens);
                System.err.printf("round %d: cocoon %.1f tok/s, llama.cpp %.1f tok/s%n", r + 1, cocoon[r], llamaCpp[r]);
            }
        }
        double c = median(cocoon);
        double l = median(llamaCpp);
        System.out.println(new JsonObject().put("gguf", gguf.toString()).put("threads", threads)
                .put("prompt_tokens", promptTokens).put("decode_tokens", decodeTokens).put("cocoon_backend", backend)
                .put("cocoon_decode_tokens_per_s", c).put("llamacpp_decode_tokens_per_s", l).put("ratio", c / l)
                .put("cocoon_rounds", new JsonArray(Arrays.stream(cocoon).boxed().toList()))
                .put("llamacpp_rounds", new JsonArray(Arrays.stream(llamaCpp).boxed().toList())).encode());
        // de.kherud:llama leaves a thread running after close().
        System.exit(0);
    }

    private static double cocoonDecode(LoadedModel model, int threads, int[] prompt, int decodeTokens) {
        int total = prompt.length + decodeTokens;
        try (NativeModel m = new NativeModel(KernelLibrary.get(), model.weights(), threads, (total + 15) / 16, 16, 1, total)) {
            int[] next = new int[1];
            m.entry(0, 0, 0, prompt, 0, true, 0, 0, 0, 0, 0, 0);
            m.step(1, next, null);
            long start = System.nanoTime();
            for (int i = 0; i < decodeTokens; i++) {
                m.entry(0, 0, prompt.length + i, new int[] {next[0]}, 0, true, 0, 0, 0, 0, 0, 0);
                m.step(1, next, null);
            }
            return decodeTokens / ((System.nanoTime() - start) / 1e9);
        }
    }

    /** Times tokens after the first, which comes out of prompt processing. */
    private static double llamaCppDecode(LlamaModel peer, String prompt, int decodeTokens) {
        InferenceParameters params = new InferenceParameters(prompt).setNPredict(decodeTokens + 1).setIgnoreEos(true)
                .setTemperature(0).setCachePrompt(false).setSeed(1);
        long first = 0;
        for (LlamaOutput ignored : peer.generate(params)) {
            if (first == 0) {
                first = System.nanoTime();
            }
        }
        // n_predict and ignore_eos fix the count; outputs may merge tokens of one UTF-8 character.
        return decodeTokens / ((System.nanoTime() - first) / 1e9);
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
