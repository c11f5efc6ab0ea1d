package org.cocoonjvm.load;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One k6 threshold expression on one metric, such as {@code p(99)<500} on {@code ttft}. Only the
 * subset the parameter files use is understood; anything else is refused when the file is read,
 * never silently passed.
 *
 * <p>Meanings follow k6: on a Trend {@code avg}, {@code min}, {@code max}, {@code med},
 * {@code p(N)} (ms); on a Counter {@code count} and {@code rate} (per second of the run); on a
 * Rate {@code rate} (the fraction of true samples). A key may select one flow with k6's own
 * tag, {@code ttft{scenario:chat}}: k6 tags every sample with the scenario that made it.
 *
 * @param scenario the flow the threshold looks at, or null for all of them
 */
public record Threshold(Metric metric, String scenario, String expression, Aggregation aggregation, double percentile,
                        Operator operator, double limit) {
    private static final Pattern KEY = Pattern.compile("([a-z_]+)(?:\\{scenario:([A-Za-z0-9_-]+)\\})?");
    private static final Pattern FORM = Pattern.compile(
            "\\s*(avg|min|max|med|count|rate|p\\((\\d+(?:\\.\\d+)?)\\))\\s*(<=|>=|<|>)\\s*(-?\\d+(?:\\.\\d+)?)\\s*");

    public enum Aggregation { AVG, MIN, MAX, MED, PERCENTILE, COUNT, RATE }

    public enum Operator {
        LT("<"), LE("<="), GT(">"), GE(">=");

        final String symbol;

        Operator(String symbol) {
            this.symbol = symbol;
        }

        boolean holds(double value, double limit) {
            return switch (this) {
                case LT -> value < limit;
                case LE -> value <= limit;
                case GT -> value > limit;
                case GE -> value >= limit;
            };
        }
    }

    /** @param key a metric name, optionally with a {@code {scenario:NAME}} selector */
    public static Threshold parse(String key, String expression) {
        Matcher k = KEY.matcher(key);
        if (!k.matches()) {
            throw new ScenarioException("threshold key '" + key + "': expected a metric name, optionally with {scenario:NAME}");
        }
        Metric metric = Metric.byName(k.group(1));
        if (metric == Metric.INTERRUPTED) {
            // The files are k6's too, and k6 refuses a threshold on a metric its script does not define.
            throw new ScenarioException("threshold key '" + key + "': interrupted is the JVM driver's own metric, which k6 does not "
                    + "define; a request that hangs is a timeout error, judged by the thresholds on errors");
        }
        String scenario = k.group(2);
        Matcher m = FORM.matcher(expression);
        if (!m.matches()) {
            throw new ScenarioException("threshold '" + expression + "' on " + metric.k6Name
                    + ": expected AGG OP NUMBER with AGG one of avg, min, max, med, p(N), count, rate and OP one of < <= > >=");
        }
        String agg = m.group(1);
        Aggregation aggregation = agg.startsWith("p(") ? Aggregation.PERCENTILE : Aggregation.valueOf(agg.toUpperCase());
        double percentile = aggregation == Aggregation.PERCENTILE ? Double.parseDouble(m.group(2)) : Double.NaN;
        if (aggregation == Aggregation.PERCENTILE && percentile > 100) {
            throw new ScenarioException("threshold '" + expression + "' on " + metric.k6Name + ": a percentile is at most 100");
        }
        boolean allowed = switch (metric.type) {
            case TREND -> aggregation != Aggregation.COUNT && aggregation != Aggregation.RATE;
            case COUNTER -> aggregation == Aggregation.COUNT || aggregation == Aggregation.RATE;
            case RATE -> aggregation == Aggregation.RATE;
        };
        if (!allowed) {
            throw new ScenarioException("threshold '" + expression + "': " + agg + " does not apply to "
                    + metric.k6Name + ", a " + metric.type.name().toLowerCase() + " metric");
        }
        Operator op = switch (m.group(3)) {
            case "<" -> Operator.LT;
            case "<=" -> Operator.LE;
            case ">" -> Operator.GT;
            default -> Operator.GE;
        };
        return new Threshold(metric, scenario, expression.strip(), aggregation, percentile, op, Double.parseDouble(m.group(4)));
    }

    /** The key as written in the parameter file. */
    public String key() {
        return scenario == null ? metric.k6Name : metric.k6Name + "{scenario:" + scenario + "}";
    }

    /** The measured value and whether it passes, on all flows or the selected one. */
    public Result evaluate(Recorder.Snapshot all, Map<String, Recorder.Snapshot> byFlow) {
        Recorder.Snapshot snapshot = scenario == null ? all : byFlow.get(scenario);
        if (snapshot == null) {
            throw new ScenarioException("threshold " + key() + ": no flow named " + scenario);
        }
        double value = switch (aggregation) {
            case AVG -> snapshot.trend(metric).avg();
            case MIN -> snapshot.trend(metric).min();
            case MAX -> snapshot.trend(metric).max();
            case MED -> snapshot.trend(metric).percentile(50);
            case PERCENTILE -> snapshot.trend(metric).percentile(percentile);
            case COUNT -> snapshot.count(metric);
            case RATE -> metric.type == Metric.Type.RATE ? snapshot.fraction(metric)
                    : snapshot.count(metric) / Math.max(1e-9, snapshot.seconds());
        };
        // A trend with no samples has no value: k6 passes it; so do we, and the summary shows it was empty.
        boolean ok = Double.isNaN(value) || operator.holds(value, limit);
        return new Result(this, value, ok);
    }

    public record Result(Threshold threshold, double value, boolean ok) {}
}
