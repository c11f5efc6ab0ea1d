package org.cocoonjvm.load;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A run cut into equal intervals, for soaks: a slow creep of latency or a sag in throughput shows
 * here where the run's totals average it away. A request counts in the interval it ended in, with
 * its tokens and its time to first token, so each column sums to the run's total; a long stream's
 * tokens all land in its last interval.
 *
 * @param interval  each interval's length; the last is shorter when the run does not end on a boundary
 * @param intervals from the run's start, empty ones included
 */
public record TimeSeries(Duration interval, List<Interval> intervals) {
    public static final Duration DEFAULT_INTERVAL = Duration.ofSeconds(10);

    /** What ended in one interval; the time to first token's percentiles are NaN when none did. */
    public record Interval(double startSeconds, double endSeconds, long requests, long completed, long aborted, long rejected,
                           long errors, long tokens, double ttftP50, double ttftP99) {
        public double tokensPerSecond() {
            return tokens / Math.max(1e-9, endSeconds - startSeconds);
        }
    }

    /** Collects a run's outcomes by when they ended; used on the driver's event loop, frozen once at the end. */
    static final class Recording {
        private final long intervalNanos;
        private final List<Recorder> buckets = new ArrayList<>();

        Recording(Duration interval) {
            if (interval.toMillis() < 1) {
                throw new IllegalArgumentException("a time series interval must be at least 1 ms, got " + interval);
            }
            this.intervalNanos = interval.toNanos();
        }

        void record(Outcome outcome, long sinceStartNanos) {
            int i = (int) (sinceStartNanos / intervalNanos);
            while (buckets.size() <= i) {
                buckets.add(new Recorder());
            }
            outcome.record(buckets.get(i));
        }

        /** The series of a run that lasted {@code seconds}: one interval per started {@code interval}, at least one. */
        TimeSeries freeze(double seconds) {
            double every = intervalNanos / 1e9;
            int count = Math.max(1, Math.max(buckets.size(), (int) Math.ceil(seconds / every)));
            List<Interval> intervals = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                double start = i * every;
                double end = Math.max(start, Math.min((i + 1) * every, seconds));
                Recorder.Snapshot s = (i < buckets.size() ? buckets.get(i) : new Recorder()).snapshot(end - start);
                Recorder.TrendStats ttft = s.trend(Metric.TTFT);
                intervals.add(new Interval(start, end, s.count(Metric.REQUESTS), s.count(Metric.COMPLETED), s.count(Metric.ABORTED),
                        s.count(Metric.REJECTED), s.count(Metric.ERRORS), s.count(Metric.TOKENS), ttft.percentile(50), ttft.percentile(99)));
            }
            return new TimeSeries(Duration.ofNanos(intervalNanos), List.copyOf(intervals));
        }
    }

    /** One line per interval, under a header; time to first token in milliseconds, {@code -} where no request ended. */
    String text() {
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
                "%n  every %s (a request counts where it ended):%n  %8s %8s %9s %7s %8s %6s %9s %10s %10s%n",
                interval.toMillis() % 1000 == 0 ? interval.toSeconds() + "s" : K6Duration.format(interval), "from", "requests", "completed", "aborted", "rejected", "errors", "tokens/s", "ttft p(50)",
                "ttft p(99)"));
        for (Interval i : intervals) {
            out.append(String.format(Locale.ROOT, "  %7.0fs %8d %9d %7d %8d %6d %9.1f %10s %10s%n", i.startSeconds(), i.requests(),
                    i.completed(), i.aborted(), i.rejected(), i.errors(), i.tokensPerSecond(), millis(i.ttftP50()), millis(i.ttftP99())));
        }
        return out.toString();
    }

    JsonObject json() {
        JsonArray list = new JsonArray();
        for (Interval i : intervals) {
            list.add(new JsonObject().put("start_s", i.startSeconds()).put("end_s", i.endSeconds()).put("requests", i.requests())
                    .put("completed", i.completed()).put("aborted", i.aborted()).put("rejected", i.rejected()).put("errors", i.errors())
                    .put("tokens", i.tokens()).put("tokens_per_s", i.tokensPerSecond())
                    .put("ttft", new JsonObject().put("p(50)", Summary.num(i.ttftP50())).put("p(99)", Summary.num(i.ttftP99()))));
        }
        return new JsonObject().put("interval_s", interval.toNanos() / 1e9).put("intervals", list);
    }

    private static String millis(double ms) {
        return Double.isNaN(ms) ? "-" : String.format(Locale.ROOT, "%.2fms", ms);
    }
}
