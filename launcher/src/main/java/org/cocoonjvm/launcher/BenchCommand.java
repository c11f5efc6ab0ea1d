package org.cocoonjvm.launcher;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.cocoonjvm.load.GatewayBench;
import org.cocoonjvm.load.K6Duration;
import org.cocoonjvm.load.PaymentsBench;
import org.cocoonjvm.load.ScenarioException;
import org.cocoonjvm.protocol.transport.NetTransport;
import org.cocoonjvm.worker.kernels.KernelLibrary;
import org.cocoonjvm.worker.kernels.NativeModel;
import org.cocoonjvm.worker.model.LoadedModel;
import org.cocoonjvm.worker.model.ModelLoader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code cocoon bench …}: benchmarks whose results go into docs/benchmarks.md. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks.",
        subcommands = {BenchCommand.EngineBench.class, BenchCommand.GatewayOverhead.class, BenchCommand.Payments.class})
final class BenchCommand {

    /**
     * The gateway's overhead: the same streaming load straight to a synthetic-engine worker and
     * through a gateway, in one process, alternating, at each concurrency (see {@link GatewayBench}).
     */
    @Command(name = "gateway", mixinStandardHelpOptions = true,
            description = "Time to first token and tokens/s, direct to a worker vs through the gateway; table and SVG plots.")
    static final class GatewayOverhead implements Callable<Integer> {
        @Option(names = "--concurrency", defaultValue = "1,8,32,64", split = ",", description = "Streams at once. Default: ${DEFAULT-VALUE}.")
        List<Integer> concurrencies;
        @Option(names = "--phase", defaultValue = "2s", description = "Length of each direct or gateway phase. Default: ${DEFAULT-VALUE}.")
        String phase;
        @Option(names = "--rounds", defaultValue = "2", description = "Direct-then-gateway pairs per concurrency. Default: ${DEFAULT-VALUE}.")
        int rounds;
        @Option(names = "--synthetic-rate", defaultValue = "1000", description = "Engine steps (tokens) per second per stream. Default: ${DEFAULT-VALUE}.")
        double rate;
        @Option(names = "--reply-tokens", defaultValue = "100", description = "Tokens per reply (the mean, with a spread). Default: ${DEFAULT-VALUE}.")
        int replyTokens;
        @Option(names = "--reply-spread", defaultValue = "0",
                description = "Reply lengths uniform within tokens × (1 ± this); 0: all equal, the streams in lockstep. Default: ${DEFAULT-VALUE}.")
        double replySpread;
        @Option(names = "--idle-streams", defaultValue = "0", description = "Also measure the heap held by this many idle streams.")
        int idleStreams;
        @Option(names = "--warmup", defaultValue = "60s",
                description = "Most unmeasured load on the paths before measuring; ends early once the JIT is quiet. Default: ${DEFAULT-VALUE}.")
        String warmup;
        @Option(names = "--transport", defaultValue = "nio", converter = TransportChoice.Converter.class,
                description = "The client's and the worker's socket layer: nio or io_uring. Default: ${DEFAULT-VALUE}.")
        NetTransport transport;
        @Option(names = "--gateway-transport", converter = TransportChoice.Converter.class,
                description = "The gateway's socket layer, to compare transports with the direct path unchanged. Default: --transport.")
        NetTransport gatewayTransport;
        @Option(names = "--control",
                description = "Also measure a third path through a byte-splicing TCP proxy in the gateway's place: what any proxy adds here.")
        boolean control;
        @Option(names = "--out", defaultValue = "bench-gateway", description = "Directory for ttft-cdf.svg, throughput.svg, report.json. Default: ${DEFAULT-VALUE}.")
        Path out;
        @Option(names = "--json", description = "Print report.json instead of the table.") boolean json;

        @Override
        public Integer call() throws Exception {
            GatewayBench.Options options;
            try {
                options = new GatewayBench.Options(concurrencies, K6Duration.parse(phase, "--phase"), rounds, rate,
                        new GatewayBench.Replies(replyTokens, replySpread), idleStreams, K6Duration.parse(warmup, "--warmup"),
                        transport.requireAvailable(), (gatewayTransport == null ? transport : gatewayTransport).requireAvailable(),
                        control);
            } catch (ScenarioException | IllegalStateException e) {
                throw new Cocoon.UsageException(e.getMessage());
            }
            // Before the minutes of warm-up and phases, not after them.
            OutputPaths.requireWritableDirectory("--out", out);
            GatewayBench.Report report = GatewayBench.run(options);
            // The results first: should the plots fail to write, the table is not lost with them.
            System.out.print(json ? report.json().encodePrettily() + System.lineSeparator() : report.table());
            System.out.flush();
            List<Path> files = report.writePlots(out);
            System.err.println("wrote " + files);
            return 0;
        }
    }

    /** What paying workers every K tokens costs the gateway, against payments off (see {@link PaymentsBench}). */
    @Command(name = "payments", mixinStandardHelpOptions = true,
            description = "Gateway tokens/s and CPU per token with per-K-token payment states vs payments off, alternating.")
    static final class Payments implements Callable<Integer> {
        @Option(names = "--concurrency", defaultValue = "64", description = "Streams at once. Default: ${DEFAULT-VALUE}.")
        int concurrency;
        @Option(names = "--every-tokens", defaultValue = "1", description = "K: a payment state every K tokens. Default: ${DEFAULT-VALUE}.")
        int everyTokens;
        @Option(names = "--phase", defaultValue = "3s", description = "Length of each paid or unpaid phase. Default: ${DEFAULT-VALUE}.")
        String phase;
        @Option(names = "--rounds", defaultValue = "5", description = "Pairs of one paid and one unpaid phase, order swapped each round. Default: ${DEFAULT-VALUE}.")
        int rounds;
        @Option(names = "--synthetic-rate", defaultValue = "1000", description = "Engine steps (tokens) per second per stream. Default: ${DEFAULT-VALUE}.")
        double rate;
        @Option(names = "--reply-tokens", defaultValue = "100", description = "Tokens per reply. Default: ${DEFAULT-VALUE}.")
        int replyTokens;
        @Option(names = "--json", description = "Print JSON instead of the table.") boolean json;

        @Override
        public Integer call() {
            PaymentsBench.Options options;
            try {
                options = new PaymentsBench.Options(concurrency, everyTokens, K6Duration.parse(phase, "--phase"), rounds, rate,
                        replyTokens);
            } catch (ScenarioException e) {
                throw new Cocoon.UsageException(e.getMessage());
            }
            PaymentsBench.Report report = PaymentsBench.run(options);
            System.out.print(json ? report.json().encodePrettily() + System.lineSeparator() : report.table());
            return 0;
        }
    }

    /**
     * Prefill and decode throughput of the native engine per batch size: B sequences prefill
     * {@code --prompt-tokens} each in one step, then decode {@code --decode-tokens} steps together.
     */
    @Command(name = "engine", mixinStandardHelpOptions = true, description = "Prefill and decode tokens/s per batch size.")
    static final class EngineBench implements Callable<Integer> {
        @Option(names = "--model", required = true) Path model;
        @Option(names = "--batch", defaultValue = "1,8,32", split = ",") List<Integer> batches;
        @Option(names = "--prompt-tokens", defaultValue = "128") int promptTokens;
        @Option(names = "--decode-tokens", defaultValue = "32") int decodeTokens;
        @Option(names = "--threads", defaultValue = "0", description = "CPU threads; 0 uses every core.") int threads;
        @Option(names = "--json", description = "Print one JSON object.") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonArray rows = new JsonArray();
            try (LoadedModel loaded = ModelLoader.load(model)) {
                for (int b : batches) {
                    rows.add(run(loaded, b));
                }
                JsonObject result = new JsonObject().put("model", loaded.displayId()).put("backend", KernelLibrary.get().backend())
                        .put("threads", threads).put("prompt_tokens", promptTokens).put("decode_tokens", decodeTokens)
                        .put("results", rows);
                if (json) {
                    System.out.println(result.encode());
                } else {
                    System.out.printf("%s on %s%n%6s %14s %14s %12s%n", loaded.displayId(), KernelLibrary.get().backend(),
                            "batch", "prefill tok/s", "decode tok/s", "peak MiB");
                    for (int i = 0; i < rows.size(); i++) {
                        JsonObject r = rows.getJsonObject(i);
                        System.out.printf("%6d %14.1f %14.1f %12.1f%n", r.getInteger("batch"), r.getDouble("prefill_tokens_per_s"),
                                r.getDouble("decode_tokens_per_s"), r.getLong("peak_bytes") / 1048576.0);
                    }
                }
            }
            return 0;
        }

        private JsonObject run(LoadedModel loaded, int batch) {
            int perSeq = promptTokens + decodeTokens;
            int vocab = loaded.config().vocab();
            SplittableRandom random = new SplittableRandom(batch);
            try (NativeModel m = new NativeModel(KernelLibrary.get(), loaded.weights(), threads,
                    batch * ((perSeq + 15) / 16), 16, batch, batch * promptTokens)) {
                int[] next = new int[batch];
                for (int s = 0; s < batch; s++) {
                    m.entry(s, s, 0, random.ints(promptTokens, 0, vocab).toArray(), s * promptTokens, true, 0, 0, 0, 0, 0, s);
                }
                long t0 = System.nanoTime();
                m.step(batch, next, null);
                long prefillNanos = System.nanoTime() - t0;
                long t1 = System.nanoTime();
                for (int step = 0; step < decodeTokens; step++) {
                    for (int s = 0; s < batch; s++) {
                        m.entry(s, s, promptTokens + step, new int[] {next[s]}, s, true, 0, 0, 0, 0, 0, s);
                    }
                    m.step(batch, next, null);
                }
                long decodeNanos = System.nanoTime() - t1;
                return new JsonObject().put("batch", batch)
                        .put("prefill_tokens_per_s", batch * (double) promptTokens / (prefillNanos / 1e9))
                        .put("decode_tokens_per_s", batch * (double) decodeTokens / (decodeNanos / 1e9))
                        .put("decode_ms_per_step", decodeNanos / 1e6 / decodeTokens)
                        .put("peak_bytes", m.peakBytes());
            }
        }
    }
}
