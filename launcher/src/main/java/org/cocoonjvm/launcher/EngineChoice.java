package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.attest.ratls.NodeConfig;
import org.cocoonjvm.protocol.hello.HelloLimits;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.forward.ForwarderOptions;
import org.cocoonjvm.worker.forward.OpenAiForwarder;
import org.cocoonjvm.worker.kernels.NativeEngine;
import org.cocoonjvm.worker.kernels.NativeEngineOptions;
import org.cocoonjvm.worker.model.DType;
import org.cocoonjvm.worker.model.LoadedModel;
import org.cocoonjvm.worker.model.ModelFormat;
import org.cocoonjvm.worker.model.ModelFormatException;
import org.cocoonjvm.worker.model.ModelLoader;
import org.cocoonjvm.worker.model.RandomModel;
import org.cocoonjvm.worker.model.RandomModelSpec;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.Scheduler;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.Spec;

/** How a worker generates: the options shared by {@code demo} and {@code worker} (a picocli mixin). */
final class EngineChoice {
    /** The demo's embedded model: small enough to load in a second, real enough to run every kernel. */
    static final RandomModelSpec DEMO_MODEL = RandomModelSpec.of("qwen2", 4, 256, 4, 2, 512, 1024, 7, DType.F16, 4096)
            .withName("cocoon-demo-qwen2");
    private static final int KV_BLOCK_TOKENS = 16;
    /** The native kernels' own bound on their thread pool. */
    static final int MAX_THREADS = 1024;
    private static final List<String> ENGINES = List.of("native", "synthetic", "forward");
    /**
     * The engines each option (but {@code --engine}) configures. The others ignore it, and an
     * operator who gave it meant another engine: with {@code --engine forward} forgotten, a worker
     * given {@code --forward-url} would load the model's weights to serve it natively.
     */
    static final Map<String, Set<String>> ENGINES_OF = Map.ofEntries(
            Map.entry("--model", Set.of("native", "forward")),
            Map.entry("--threads", Set.of("native")),
            Map.entry("--kv-tokens", Set.of("native")),
            Map.entry("--max-batch", Set.of("native", "synthetic")),
            Map.entry("--synthetic-rate", Set.of("synthetic")),
            Map.entry("--synthetic-reply-tokens", Set.of("synthetic")),
            Map.entry("--forward-url", Set.of("forward")),
            Map.entry("--forward-model", Set.of("forward")),
            Map.entry("--forward-api-key", Set.of("forward")),
            Map.entry("--forward-idle-timeout-seconds", Set.of("forward")),
            Map.entry("--forward-max-concurrent", Set.of("forward")),
            Map.entry("--forward-running-usage", Set.of("forward")));

    /** The command's own spec (worker's, demo's): what the operator actually gave. */
    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = "--engine", defaultValue = "native",
            description = "native | synthetic | forward. Default: ${DEFAULT-VALUE}.")
    String engine;

    @Option(names = "--model", description = "native: a Hugging Face directory or .gguf file. "
            + "Default: a small random-weight Qwen2 model (cocoon-demo-qwen2), generated at start.")
    Path model;

    @Option(names = "--threads", defaultValue = "0", description = "native: CPU threads per step, at most " + MAX_THREADS
            + "; 0 uses every core. Default: ${DEFAULT-VALUE}.")
    int threads;

    @Option(names = "--kv-tokens", defaultValue = "32768", description = "native: KV cache size in tokens, at least " + KV_BLOCK_TOKENS + ". Default: ${DEFAULT-VALUE}.")
    int kvTokens;

    @Option(names = "--max-batch", defaultValue = "32", description = "native, synthetic: sequences per engine step. "
            + "Default: ${DEFAULT-VALUE}.")
    int maxBatch;

    @Option(names = "--synthetic-rate", defaultValue = "25",
            description = "synthetic: tokens per second per sequence. Default: ${DEFAULT-VALUE}.")
    double syntheticRate;

    @Option(names = "--synthetic-reply-tokens", defaultValue = "0",
            description = "synthetic: every reply's length unless max_tokens is lower; 0: 24 to 63. Default: ${DEFAULT-VALUE}.")
    int syntheticReplyTokens;

    @Option(names = "--forward-url", description = "forward: the OpenAI-compatible server beside the worker, e.g. "
            + "http://127.0.0.1:8000 (http://127.0.0.1:8000/v1, the OpenAI clients' form, means the same).")
    URI forwardUrl;

    @Option(names = "--forward-model", description = "forward: the model name that server expects.")
    String forwardModel;

    @Option(names = "--forward-api-key", description = "forward: the key that server wants, sent as 'Authorization: Bearer <key>'. "
            + "Default: none.")
    String forwardApiKey;

    @Option(names = "--forward-idle-timeout-seconds", defaultValue = "60",
            description = "forward: a stream under way that gets nothing from the server for this long fails (billed as far as it got). "
                    + "Default: ${DEFAULT-VALUE}.")
    int forwardIdleTimeoutSeconds;

    @Option(names = "--forward-max-concurrent", defaultValue = "64", description = "forward: requests at once. Default: ${DEFAULT-VALUE}.")
    int forwardMaxConcurrent;

    @Option(names = "--forward-running-usage", defaultValue = "true", negatable = true, fallbackValue = "true",
            description = "forward: ask the server for its token counts on every chunk (stream_options.continuous_usage_stats "
                    + "for vLLM and SGLang, timings_per_token for llama.cpp), so that a stream cut short is billed exactly; "
                    + "--no-forward-running-usage for a server that rejects unknown fields "
                    + "(each chunk with text then counts as one token, the prompt as 0). Default: ${DEFAULT-VALUE}.")
    boolean forwardRunningUsage;

    /** Checks the options before anything starts, so a typo fails fast with one line. */
    void validate() {
        if (!ENGINES.contains(engine)) {
            throw new Cocoon.UsageException("--engine must be native, synthetic or forward, got '" + engine + "'");
        }
        refuseOptionsOfOtherEngines();
        if ("forward".equals(engine)) {
            if (forwardUrl == null || forwardModel == null || model == null) {
                throw new Cocoon.UsageException("--engine forward needs --forward-url, --forward-model and --model "
                        + "(the model's files, which give the worker its name@hash)");
            }
            if (forwardIdleTimeoutSeconds < 1) {
                throw new Cocoon.UsageException("--forward-idle-timeout-seconds must be positive, got " + forwardIdleTimeoutSeconds);
            }
            if (!"http".equals(forwardUrl.getScheme()) || forwardUrl.getHost() == null) {
                throw new Cocoon.UsageException("--forward-url must be http://HOST[:PORT], got " + forwardUrl);
            }
            // What the worker announces as its capacity: a gateway refuses more (review Y, Y-6).
            Cocoon.UsageException.checkRange("--forward-max-concurrent", forwardMaxConcurrent, 1, HelloLimits.MAX_CAPACITY);
        }
        if (!(syntheticRate > 0)) {
            throw new Cocoon.UsageException("--synthetic-rate must be positive, got " + syntheticRate);
        }
        Cocoon.UsageException.checkRange("--max-batch", maxBatch, 1, HelloLimits.MAX_CAPACITY);
        Cocoon.UsageException.checkRange("--threads", threads, 0, MAX_THREADS);
        Cocoon.UsageException.atLeast("--synthetic-reply-tokens", syntheticReplyTokens, 0);
        // The cache is handed out in blocks: less than one cannot hold a token.
        Cocoon.UsageException.atLeast("--kv-tokens", kvTokens, KV_BLOCK_TOKENS);
    }

    /**
     * Refuses the options given for another engine than {@code --engine}, in one line that names
     * each with the engines it is for.
     */
    private void refuseOptionsOfOtherEngines() {
        ParseResult given = spec.commandLine().getParseResult();
        // Options of the same engines together, in the order given: "--forward-url, --forward-model (for --engine forward)".
        Map<Set<String>, List<String>> foreign = new LinkedHashMap<>();
        Set<String> seen = new LinkedHashSet<>();
        for (OptionSpec option : given.matchedOptions()) {
            Set<String> engines = ENGINES_OF.get(option.longestName());
            if (engines != null && !engines.contains(engine) && seen.add(option.longestName())) {
                foreign.computeIfAbsent(engines, e -> new ArrayList<>()).add(option.longestName());
            }
        }
        if (foreign.isEmpty()) {
            return;
        }
        List<String> groups = new ArrayList<>();
        Set<String> common = new LinkedHashSet<>(ENGINES);
        foreign.forEach((engines, options) -> {
            groups.add(String.join(", ", options) + " (for --engine "
                    + String.join(", ", ENGINES.stream().filter(engines::contains).toList()) + ")");
            common.retainAll(engines);
        });
        String them = seen.size() == 1 ? "it" : "them";
        throw new Cocoon.UsageException("--engine " + engine + (given.hasMatchedOption("--engine") ? "" : " (the default)")
                + " does not use " + String.join(", ", groups) + ": "
                + (common.isEmpty() ? "drop " + them : "give --engine " + common.iterator().next() + " or drop " + them));
    }

    /**
     * What the worker's RA-TLS certificate says of its engine (attest-verifier's {@code NodeConfig}):
     * the image's measurement does not cover the command line, and only the native engine keeps
     * prompts inside the TEE (forward sends them to the URL it names, which is said too, without
     * credentials; synthetic answers with words from a list), so a gateway's policy can accept
     * {@code "engine": ["native"]} alone.
     */
    NodeConfig claims() {
        Map<String, String> claims = new LinkedHashMap<>(Map.of("role", "worker", "engine", engine));
        if ("forward".equals(engine) && forwardUrl != null) {
            String url = forwardUrl.toString();
            claims.put("forward_url", forwardUrl.getRawUserInfo() == null ? url : url.replace(forwardUrl.getRawUserInfo() + "@", ""));
        }
        return NodeConfig.of(claims);
    }

    /** What the options may cost without being wrong, each said once at start. */
    List<String> startWarnings() {
        int cpus = Runtime.getRuntime().availableProcessors();
        if ("native".equals(engine) && threads > cpus) {
            return List.of("--threads " + threads + " is more than the " + cpus + " CPUs this machine has: the extra threads "
                    + "only take turns on them, which slows every step; 0 uses one per CPU");
        }
        return List.of();
    }

    /**
     * @param credit the worker's payments: the scheduler (or the forwarder) meters each request on
     *               its channel and pauses a channel the gateway is behind on; pass the same
     *               {@code WorkerPayments} the worker node is given, or its credit window does nothing
     */
    Generator create(Vertx vertx, SchedulerOptions scheduler, CreditGate credit) throws IOException {
        validate();
        return switch (engine) {
            case "synthetic" -> new Scheduler(new SyntheticEngine(syntheticRate, maxBatch, 4096, syntheticReplyTokens),
                    scheduler, credit);
            case "native" -> new Scheduler(new NativeEngine(load(modelPath()),
                    new NativeEngineOptions(threads, maxBatch, kvTokens, KV_BLOCK_TOKENS, Math.max(2048, maxBatch))), scheduler, credit);
            default -> {
                ModelInfo identity;
                try (LoadedModel m = load(model)) {
                    identity = m.info();
                }
                yield new OpenAiForwarder(vertx, new ForwarderOptions(forwardUrl, forwardModel, forwardApiKey, identity,
                        forwardMaxConcurrent, 10_000, TimeUnit.SECONDS.toMillis(forwardIdleTimeoutSeconds), forwardRunningUsage),
                        credit);
            }
        };
    }

    /** The model at {@code path}; one that is missing or unreadable stops the start in one line. */
    private static LoadedModel load(Path path) {
        try {
            return ModelLoader.load(path);
        } catch (IOException | ModelFormatException e) {
            throw new Cocoon.StartFailure("cannot load the model at " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * The model to serve: {@code --model}, else the demo's small random model, written afresh into
     * a temporary directory (it takes well under a second, and can never be stale).
     */
    private Path modelPath() throws IOException {
        if (model != null) {
            return model;
        }
        Path dir = Files.createTempDirectory("cocoon-demo-model-");
        RandomModel.write(DEMO_MODEL, dir, Set.of(ModelFormat.HF));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
        return dir.resolve(RandomModel.HF_DIR);
    }

    private static void deleteTree(Path dir) {
        try (var paths = Files.walk(dir)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // Best effort: it is a temporary directory.
        }
    }
}
