package org.cocoonjvm.load;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.cocoonjvm.load.GatewayBench.Control;
import org.cocoonjvm.load.GatewayBench.CpuPerToken;
import org.cocoonjvm.load.GatewayBench.Options;
import org.cocoonjvm.load.GatewayBench.Report;
import org.cocoonjvm.load.GatewayBench.Row;
import org.cocoonjvm.load.GatewayBench.WarmUp;

/**
 * A {@link GatewayBench.Report} as a reader takes it: the tables quoted in docs/benchmarks.md, the
 * JSON a later run is compared with, the SVG plots. Apart from the bench because none of it
 * changes what is measured.
 */
final class ReportFormat {
    private ReportFormat() {}

    static String table(Report report) {
        Options options = report.options();
        WarmUp warmup = report.warmup();
        List<Row> rows = report.rows();
        JsonObject idle = report.idle();
        StringBuilder t = new StringBuilder(String.format(Locale.ROOT,
                "gateway overhead: synthetic engine %.0f tok/s per stream, %s, %s phases x %d rounds, %d cores, "
                        + "transport %s (gateway %s)%n",
                options.tokensPerSecond(), options.replies().describe(), K6Duration.format(options.phase()), options.rounds(),
                Runtime.getRuntime().availableProcessors(), options.transport(), options.gatewayTransport()));
        t.append(warmup.lastCompileMillis() < 0 ? String.format("warm-up: none%n") : String.format(Locale.ROOT,
                "warm-up: %.1f s, the JIT %s (%d ms compiling in the last %.1f s)%n", warmup.seconds(),
                warmup.quiet() ? "quiet" : "STILL COMPILING at the limit", warmup.lastCompileMillis(), warmup.lastSliceSeconds()));
        t.append(String.format(Locale.ROOT, "%5s | %9s %9s %8s | %9s %9s %8s | %10s %10s %6s | %8s %8s | %6s%n",
                "conc", "p50 dir", "p50 gw", "added", "p99 dir", "p99 gw", "added", "tok/s dir", "tok/s gw", "ratio",
                "µs/t dir", "µs/t gw", "errors"));
        for (Row r : rows) {
            t.append(String.format(Locale.ROOT, "%5d | %7.2fms %7.2fms %6.2fms | %7.2fms %7.2fms %6.2fms | %10.0f %10.0f %5.2fx | %8.2f %8.2f | %6d%n",
                    r.concurrency(), r.directTtft().percentile(50), r.gatewayTtft().percentile(50), r.addedP50(),
                    r.directTtft().percentile(99), r.gatewayTtft().percentile(99), r.addedP99(),
                    r.directTokensPerS(), r.gatewayTokensPerS(), r.gatewayTokensPerS() / r.directTokensPerS(),
                    r.directCpu().process(), r.gatewayCpu().process(), r.errors()));
        }
        t.append(String.format(Locale.ROOT, "CPU µs per token by who spent it (direct path / gateway path); "
                + "tokens per CPU-second of the gateway's event loops, and the bytes they allocated per token; "
                + "bytes the whole process allocated per token (direct path / gateway path)%n"));
        t.append(String.format(Locale.ROOT, "%5s | %15s %15s %15s %15s | %12s %9s | %15s%n", "conc", "client", "worker", "gateway",
                "other (GC,JIT,log)", "gw tok/cpu-s", "gw B/tok", "process B/tok"));
        for (Row r : rows) {
            CpuPerToken d = r.directCpu();
            CpuPerToken g = r.gatewayCpu();
            t.append(String.format(Locale.ROOT, "%5d | %6.2f / %6.2f %6.2f / %6.2f %6s / %6.2f %6.2f / %6.2f | %12.0f %9.0f | %6.0f / %6.0f%n",
                    r.concurrency(), d.client(), g.client(), d.worker(), g.worker(), "-", g.gateway(), d.other(), g.other(),
                    1e6 / g.gateway(), g.gatewayBytes(), d.processBytes(), g.processBytes()));
        }
        t.append(String.format(Locale.ROOT, "The gateway's own share of the gateway path's TTFT (arrival until the worker call "
                + "was written, plus passing the first token on)%n"));
        t.append(String.format(Locale.ROOT, "%5s | %9s %9s %9s%n", "conc", "p50", "p99", "requests"));
        for (Row r : rows) {
            t.append(String.format(Locale.ROOT, "%5d | %7.3fms %7.3fms %9d%n", r.concurrency(), r.gatewayOwn().percentile(50),
                    r.gatewayOwn().percentile(99), r.gatewayOwn().count()));
        }
        t.append(String.format(Locale.ROOT, "Stop-the-world pauses of the measured phases (JFR safepoints; they stop client, "
                + "gateway and worker alike): requests whose wait for the first token one overlapped, and TTFT p99 without them%n"));
        t.append(String.format(Locale.ROOT, "%5s | %7s %9s | %9s %9s | %9s %9s %8s%n", "conc", "pauses", "total",
                "caught dir", "caught gw", "p99 dir", "p99 gw", "added"));
        for (Row r : rows) {
            GatewayBench.PauseShare p = r.pauses();
            t.append(String.format(Locale.ROOT, "%5d | %7d %7.1fms | %9.2f%% %8.2f%% | %7.2fms %7.2fms %6.2fms%n", r.concurrency(),
                    p.count(), p.totalMillis(), 100 * p.directOverlapped(), 100 * p.gatewayOverlapped(),
                    p.directUnpaused().percentile(99), p.gatewayUnpaused().percentile(99), p.addedP99()));
        }
        if (rows.getFirst().control() != null) {
            t.append(String.format(Locale.ROOT, "Control: a byte-splicing TCP proxy in the gateway's place (one more process on "
                    + "the path, no work): what any proxy adds on this machine, and the gateway's TTFT beyond it%n"));
            t.append(String.format(Locale.ROOT, "%5s | %9s %9s | %9s %9s | %10s %15s%n", "conc", "added p50", "added p99",
                    "gw-ctl p50", "gw-ctl p99", "tok/s ctl", "proxy tok/cpu-s"));
            for (Row r : rows) {
                Control c = r.control();
                t.append(String.format(Locale.ROOT, "%5d | %7.2fms %7.2fms | %8.2fms %8.2fms | %10.0f %15.0f%n", r.concurrency(),
                        c.ttft().percentile(50) - r.directTtft().percentile(50), c.ttft().percentile(99) - r.directTtft().percentile(99),
                        r.gatewayTtft().percentile(50) - c.ttft().percentile(50), r.gatewayTtft().percentile(99) - c.ttft().percentile(99),
                        c.tokensPerS(), 1e6 / c.cpu().gateway()));
            }
        }
        if (idle != null) {
            t.append(String.format(Locale.ROOT, "idle streams: %d held %.1f MiB of heap (%.1f KiB each, whole process)%n",
                    idle.getInteger("streams"), idle.getDouble("heap_mib_whole_process"), idle.getDouble("heap_kib_per_stream_whole_process")));
        }
        return t.toString();
    }

    static JsonObject json(Report report) {
        Options options = report.options();
        WarmUp warmup = report.warmup();
        List<Row> rows = report.rows();
        JsonObject idle = report.idle();
        JsonArray out = new JsonArray();
        for (Row r : rows) {
            out.add(new JsonObject().put("concurrency", r.concurrency())
                    .put("requests_direct", r.directTtft().count()).put("requests_gateway", r.gatewayTtft().count())
                    .put("ttft_p50_direct_ms", r.directTtft().percentile(50)).put("ttft_p50_gateway_ms", r.gatewayTtft().percentile(50))
                    .put("ttft_p99_direct_ms", r.directTtft().percentile(99)).put("ttft_p99_gateway_ms", r.gatewayTtft().percentile(99))
                    .put("added_p50_ms", r.addedP50()).put("added_p99_ms", r.addedP99())
                    .put("gateway_own_p50_ms", r.gatewayOwn().percentile(50))
                    .put("gateway_own_p99_ms", r.gatewayOwn().percentile(99))
                    .put("tokens_per_s_direct", r.directTokensPerS()).put("tokens_per_s_gateway", r.gatewayTokensPerS())
                    .put("cpu_us_per_token_direct", r.directCpu().json()).put("cpu_us_per_token_gateway", r.gatewayCpu().json())
                    .put("tokens_per_gateway_cpu_second", 1e6 / r.gatewayCpu().gateway())
                    .put("errors", r.errors())
                    .put("pauses", new JsonObject().put("count", r.pauses().count()).put("total_ms", r.pauses().totalMillis())
                            .put("overlapped_share_direct", r.pauses().directOverlapped())
                            .put("overlapped_share_gateway", r.pauses().gatewayOverlapped())
                            .put("unpaused_ttft_p99_direct_ms", r.pauses().directUnpaused().percentile(99))
                            .put("unpaused_ttft_p99_gateway_ms", r.pauses().gatewayUnpaused().percentile(99))
                            .put("unpaused_added_p99_ms", r.pauses().addedP99()))
                    .put("control", r.control() == null ? null : new JsonObject()
                            .put("ttft_p50_ms", r.control().ttft().percentile(50))
                            .put("ttft_p99_ms", r.control().ttft().percentile(99))
                            .put("added_p50_ms", r.control().ttft().percentile(50) - r.directTtft().percentile(50))
                            .put("added_p99_ms", r.control().ttft().percentile(99) - r.directTtft().percentile(99))
                            .put("tokens_per_s", r.control().tokensPerS())
                            .put("cpu_us_per_token", r.control().cpu().json())
                            .put("tokens_per_proxy_cpu_second", 1e6 / r.control().cpu().gateway())));
        }
        return new JsonObject().put("cores", Runtime.getRuntime().availableProcessors())
                .put("tokens_per_s_per_stream", options.tokensPerSecond()).put("reply_tokens", options.replies().mean())
                .put("reply_spread", options.replies().spread())
                .put("phase_ms", options.phase().toMillis()).put("rounds", options.rounds())
                .put("transport", options.transport().toString())
                .put("gateway_transport", options.gatewayTransport().toString())
                .put("warmup", new JsonObject().put("seconds", warmup.seconds()).put("jit_quiet", warmup.quiet())
                        .put("last_slice_compile_ms", warmup.lastCompileMillis()))
                .put("rows", out).put("idle_streams", idle);
    }

    static List<Path> writePlots(Report report, Path dir) throws IOException {
        List<Row> rows = report.rows();
        Files.createDirectories(dir);
        SvgChart cdf = new SvgChart("Time to first token, CDF (dashed: direct to worker; solid: via gateway)",
                "time to first token (ms)", "fraction of requests");
        double clip = 0;
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            cdf.add(cdfSeries("direct, " + r.concurrency() + " streams", i, true, r.directTtft()));
            cdf.add(cdfSeries("gateway, " + r.concurrency() + " streams", i, false, r.gatewayTtft()));
            clip = Math.max(clip, Math.max(r.directTtft().percentile(99), r.gatewayTtft().percentile(99)));
        }
        cdf.clipX(clip);
        double[] xs = rows.stream().mapToDouble(Row::concurrency).toArray();
        SvgChart throughput = new SvgChart("Tokens per second against concurrency", "concurrent streams", "tokens per second")
                .add(new SvgChart.Series("direct to worker", 0, true, true, xs, rows.stream().mapToDouble(Row::directTokensPerS).toArray()))
                .add(new SvgChart.Series("via gateway", 1, false, true, xs, rows.stream().mapToDouble(Row::gatewayTokensPerS).toArray()));
        Path cdfFile = dir.resolve("ttft-cdf.svg");
        Path throughputFile = dir.resolve("throughput.svg");
        Path jsonFile = dir.resolve("report.json");
        Files.writeString(cdfFile, cdf.render());
        Files.writeString(throughputFile, throughput.render());
        Files.writeString(jsonFile, json(report).encodePrettily());
        return List.of(cdfFile, throughputFile, jsonFile);
    }

    private static SvgChart.Series cdfSeries(String name, int colour, boolean dashed, Recorder.TrendStats ttft) {
        long[] sorted = ttft.sortedNanos();
        // At most ~200 points: enough for a smooth curve, small enough to read the file.
        int step = Math.max(1, sorted.length / 200);
        List<double[]> points = new ArrayList<>();
        for (int i = 0; i < sorted.length; i += step) {
            points.add(new double[] {sorted[i] / 1e6, (i + 1.0) / sorted.length});
        }
        if (sorted.length > 0) {
            points.add(new double[] {sorted[sorted.length - 1] / 1e6, 1.0});
        }
        return new SvgChart.Series(name, colour, dashed, false, points.stream().mapToDouble(p -> p[0]).toArray(),
                points.stream().mapToDouble(p -> p[1]).toArray());
    }
}
