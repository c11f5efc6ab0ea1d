package org.cocoonjvm.load;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What one run measured and whether its thresholds held: a k6-like text table, and JSON.
 *
 * @param ended  what ended the run; other than {@link Ending#STAGES}, the numbers and thresholds cover only the part that ran
 * @param series the same run interval by interval
 */
public record Summary(String scenario, String profile, Target target, Instant startedAt, Recorder.Snapshot snapshot,
                      Map<String, Recorder.Snapshot> flows, List<Threshold.Result> thresholds, Ending ended, TimeSeries series) {
    /** What ended a run. */
    public enum Ending {
        /** Its stages ran out: the whole scenario ran. */
        STAGES,
        /** {@code max_requests} were started before the stages ended; k6 instead runs on with iterations that do nothing. */
        MAX_REQUESTS,
        /** The operator stopped it. */
        INTERRUPTED
    }

    private static final double[] PERCENTILES = {50, 90, 95, 99};

    public boolean passed() {
        return thresholds.stream().allMatch(Threshold.Result::ok);
    }

    public double tokensPerSecond() {
        return snapshot.count(Metric.TOKENS) / Math.max(1e-9, snapshot.seconds());
    }

    public String text() {
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "%n  scenario: %s%s against %s (model %s), %.1f s%s%n%n", scenario,
                profile == null ? "" : " [profile " + profile + "]", target.baseUrl(), target.model(), snapshot.seconds(),
                switch (ended) {
                    case STAGES -> "";
                    case MAX_REQUESTS -> ", CUT SHORT by max_requests before the stages ended: the numbers cover only what ran";
                    case INTERRUPTED -> ", INTERRUPTED before its end: the numbers cover only what ran";
                }));
        for (Metric m : Metric.values()) {
            String mark = mark(m);
            String value = switch (m.type) {
                case TREND -> {
                    Recorder.TrendStats t = snapshot.trend(m);
                    yield t.count() == 0 ? "no samples" : String.format(Locale.ROOT,
                            "avg=%.2fms min=%.2fms med=%.2fms max=%.2fms p(90)=%.2fms p(95)=%.2fms p(99)=%.2fms count=%d",
                            t.avg(), t.min(), t.percentile(50), t.max(), t.percentile(90), t.percentile(95), t.percentile(99), t.count());
                }
                case COUNTER -> String.format(Locale.ROOT, "%d  %.2f/s", snapshot.count(m), snapshot.count(m) / Math.max(1e-9, snapshot.seconds()));
                case RATE -> Double.isNaN(snapshot.fraction(m)) ? "no samples"
                        : String.format(Locale.ROOT, "%.2f%%", 100 * snapshot.fraction(m));
            };
            out.append(String.format(Locale.ROOT, "  %s %s: %s%n", mark, dots(m.k6Name), value));
        }
        if (!snapshot.errorsByKind().isEmpty()) {
            out.append("    errors by kind: ").append(snapshot.errorsByKind()).append('\n');
        }
        out.append(series.text());
        out.append(String.format(Locale.ROOT, "%n  thresholds (%s):%n", passed() ? "all passed" : "FAILED"));
        for (Threshold.Result r : thresholds) {
            out.append(String.format(Locale.ROOT, "  %s %s %s  (measured %s)%n", r.ok() ? "✓" : "✗", r.threshold().key(),
                    r.threshold().expression(), Double.isNaN(r.value()) ? "no samples" : String.format(Locale.ROOT, "%.3f", r.value())));
        }
        return out.toString();
    }

    public JsonObject json() {
        JsonObject metrics = metrics(snapshot);
        JsonObject perFlow = new JsonObject();
        flows.forEach((name, s) -> perFlow.put(name, metrics(s)));
        JsonArray checks = new JsonArray();
        thresholds.forEach(r -> checks.add(new JsonObject().put("metric", r.threshold().key())
                .put("expression", r.threshold().expression()).put("value", num(r.value())).put("ok", r.ok())));
        return new JsonObject().put("scenario", scenario).put("profile", profile).put("target", target.baseUrl().toString())
                .put("model", target.model()).put("started_at", startedAt.toString()).put("duration_s", snapshot.seconds())
                .put("ended", ended.name().toLowerCase(Locale.ROOT))
                .put("metrics", metrics).put("flows", perFlow).put("tokens_per_s", tokensPerSecond())
                .put("errors_by_kind", new JsonObject(new LinkedHashMap<>(snapshot.errorsByKind())))
                .put("series", series.json()).put("thresholds", checks).put("passed", passed());
    }

    private static JsonObject metrics(Recorder.Snapshot snapshot) {
        JsonObject metrics = new JsonObject();
        for (Metric m : Metric.values()) {
            JsonObject j = new JsonObject().put("type", m.type.name().toLowerCase(Locale.ROOT));
            switch (m.type) {
                case TREND -> {
                    Recorder.TrendStats t = snapshot.trend(m);
                    j.put("count", t.count()).put("avg", num(t.avg())).put("min", num(t.min())).put("med", num(t.percentile(50)))
                            .put("max", num(t.max()));
                    for (double p : PERCENTILES) {
                        j.put("p(" + (int) p + ")", num(t.percentile(p)));
                    }
                }
                case COUNTER -> j.put("count", snapshot.count(m)).put("rate", snapshot.count(m) / Math.max(1e-9, snapshot.seconds()));
                case RATE -> j.put("rate", num(snapshot.fraction(m)));
            }
            metrics.put(m.k6Name, j);
        }
        return metrics;
    }

    private String mark(Metric m) {
        List<Threshold.Result> mine = thresholds.stream().filter(r -> r.threshold().metric() == m).toList();
        return mine.isEmpty() ? " " : mine.stream().allMatch(Threshold.Result::ok) ? "✓" : "✗";
    }

    private static String dots(String name) {
        return name + ".".repeat(Math.max(2, 22 - name.length()));
    }

    /** JSON has no NaN: an empty statistic is null. */
    static Double num(double v) {
        return Double.isNaN(v) ? null : v;
    }
}
