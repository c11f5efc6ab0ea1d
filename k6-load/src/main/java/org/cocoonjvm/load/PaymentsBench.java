package org.cocoonjvm.load;

import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.cocoonjvm.gateway.billing.PaymentOptions;

/**
 * What paying workers costs the gateway: the same closed-loop streaming load through two
 * gateways in one process, one signing a payment state every K tokens, one with payments off,
 * alternating phases (the order swapped each round) so that machine noise hits both. Each round gives a throughput ratio (paid /
 * unpaid); the median over the rounds is the result. The ledger is in memory here, so this
 * measures metering, checkpointing and signing, not the database (see the ledger benchmark).
 */
public final class PaymentsBench {

    /**
     * @param concurrency     streams open at once
     * @param everyTokens     K of the paying gateway (1: a state per token)
     * @param phase           length of each paid or unpaid phase
     * @param rounds          pairs of one paid and one unpaid phase
     * @param tokensPerSecond engine steps per second
     * @param replyTokens     tokens per reply
     */
    public record Options(int concurrency, int everyTokens, Duration phase, int rounds, double tokensPerSecond,
                          int replyTokens) {
        /** Each refusal names the {@code cocoon bench payments} option to fix, and its value. */
        public Options {
            if (concurrency < 1 || concurrency > 4096) {
                throw new ScenarioException("--concurrency must be between 1 and 4096, got " + concurrency);
            }
            ScenarioException.atLeast("--every-tokens", everyTokens, 1);
            ScenarioException.longEnough("--phase", phase);
            ScenarioException.atLeast("--rounds", rounds, 1);
            ScenarioException.positive("--synthetic-rate", tokensPerSecond);
            ScenarioException.atLeast("--reply-tokens", replyTokens, 1);
        }
    }

    /** One round: a paid and an unpaid phase. */
    public record Round(double paidTokensPerS, double unpaidTokensPerS, double paidCpuUsPerToken, double unpaidCpuUsPerToken,
                        long errors) {
        double ratio() {
            return paidTokensPerS / unpaidTokensPerS;
        }
    }

    public record Report(Options options, List<Round> rounds) {
        public double medianRatio() {
            double[] r = rounds.stream().mapToDouble(Round::ratio).sorted().toArray();
            return r.length % 2 == 1 ? r[r.length / 2] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2;
        }

        public String table() {
            StringBuilder t = new StringBuilder(String.format(Locale.ROOT,
                    "payments: K=%d vs off, %d streams, %.0f tok/s per stream, %d-token replies, %s phases, %d cores%n",
                    options.everyTokens(), options.concurrency(), options.tokensPerSecond(), options.replyTokens(),
                    K6Duration.format(options.phase()), Runtime.getRuntime().availableProcessors()));
            t.append(String.format(Locale.ROOT, "%5s | %10s %10s %6s | %9s %9s | %6s%n", "round", "tok/s paid", "tok/s off",
                    "ratio", "µs/t paid", "µs/t off", "errors"));
            for (int i = 0; i < rounds.size(); i++) {
                Round r = rounds.get(i);
                t.append(String.format(Locale.ROOT, "%5d | %10.0f %10.0f %5.3fx | %9.2f %9.2f | %6d%n", i + 1,
                        r.paidTokensPerS(), r.unpaidTokensPerS(), r.ratio(), r.paidCpuUsPerToken(), r.unpaidCpuUsPerToken(),
                        r.errors()));
            }
            t.append(String.format(Locale.ROOT, "median ratio (paid / off): %.3f%n", medianRatio()));
            return t.toString();
        }

        public JsonObject json() {
            JsonArray out = new JsonArray();
            rounds.forEach(r -> out.add(new JsonObject().put("tokens_per_s_paid", r.paidTokensPerS())
                    .put("tokens_per_s_off", r.unpaidTokensPerS()).put("ratio", r.ratio())
                    .put("cpu_us_per_token_paid", r.paidCpuUsPerToken()).put("cpu_us_per_token_off", r.unpaidCpuUsPerToken())
                    .put("errors", r.errors())));
            return new JsonObject().put("cores", Runtime.getRuntime().availableProcessors())
                    .put("concurrency", options.concurrency()).put("every_tokens", options.everyTokens())
                    .put("phase_ms", options.phase().toMillis()).put("rounds", out).put("median_ratio", medianRatio());
        }
    }

    private PaymentsBench() {}

    public static Report run(Options options) {
        PaymentOptions paid = new PaymentOptions(true, options.everyTokens(), 200, Long.MAX_VALUE / 4);
        List<Round> rounds = new ArrayList<>();
        try (LoopbackNetwork paying = new LoopbackNetwork(1, options.tokensPerSecond(), 512, options.replyTokens(), paid);
             LoopbackNetwork free = new LoopbackNetwork(1, options.tokensPerSecond(), 512, options.replyTokens(),
                     PaymentOptions.DISABLED)) {
            HttpClient paidClient = client(paying, options.concurrency());
            HttpClient freeClient = client(free, options.concurrency());
            GatewayBench.Replies replies = new GatewayBench.Replies(options.replyTokens(), 0);
            GatewayBench.Route paidRoute = new GatewayBench.Route(paying.viaGateway(), paying.cpu());
            GatewayBench.Route freeRoute = new GatewayBench.Route(free.viaGateway(), free.cpu());
            Duration warm = Duration.ofMillis(Math.min(1000, options.phase().toMillis()));
            GatewayBench.phase(paying, paidClient, paidRoute, replies, options.concurrency(), warm, new GatewayBench.Totals());
            GatewayBench.phase(free, freeClient, freeRoute, replies, options.concurrency(), warm, new GatewayBench.Totals());
            for (int i = 0; i < options.rounds(); i++) {
                GatewayBench.Totals p = new GatewayBench.Totals();
                GatewayBench.Totals f = new GatewayBench.Totals();
                // The order swaps each round: whatever the second phase inherits (heap, JIT, the
                // neighbours' load) falls on both sides.
                for (boolean paidPhase : i % 2 == 0 ? new boolean[] {true, false} : new boolean[] {false, true}) {
                    if (paidPhase) {
                        GatewayBench.phase(paying, paidClient, paidRoute, replies, options.concurrency(), options.phase(), p);
                    } else {
                        GatewayBench.phase(free, freeClient, freeRoute, replies, options.concurrency(), options.phase(), f);
                    }
                }
                Recorder.Snapshot ps = p.snapshot();
                Recorder.Snapshot fs = f.snapshot();
                rounds.add(new Round(ps.count(Metric.TOKENS) / p.seconds, fs.count(Metric.TOKENS) / f.seconds,
                        p.cpu.process() / 1e3 / Math.max(1, ps.count(Metric.TOKENS)),
                        f.cpu.process() / 1e3 / Math.max(1, fs.count(Metric.TOKENS)),
                        ps.count(Metric.ERRORS) + fs.count(Metric.ERRORS)));
            }
            paidClient.close().await();
            freeClient.close().await();
        }
        return new Report(options, rounds);
    }

    private static HttpClient client(LoopbackNetwork net, int concurrency) {
        return net.vertx().createHttpClient(new HttpClientOptions().setKeepAlive(true),
                new PoolOptions().setHttp1MaxSize(concurrency * 2));
    }
}
