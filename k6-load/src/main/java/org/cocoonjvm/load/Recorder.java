package org.cocoonjvm.load;

import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Every sample of one run, kept exactly: trends as growable arrays of nanoseconds (a run is
 * bounded in requests, so memory is too), counters, rates and error counts by kind. Written from
 * the driver's event loop and read once at the end; synchronized so a caller on another thread
 * can never see a torn array.
 */
public final class Recorder {
    /** By {@link Metric#ordinal()}: arrays rather than maps of boxed sizes, so a sample allocates nothing until its array grows. */
    private final long[][] trends = new long[Metric.values().length][];
    private final int[] trendSizes = new int[Metric.values().length];
    private final Map<Metric, Long> counters = new EnumMap<>(Metric.class);
    private final Map<Metric, long[]> rates = new EnumMap<>(Metric.class);
    private final Map<String, Long> errorsByKind = new TreeMap<>();

    public synchronized void trend(Metric metric, long nanos) {
        requireType(metric, Metric.Type.TREND);
        int m = metric.ordinal();
        int size = trendSizes[m];
        if (trends[m] == null) {
            trends[m] = new long[256];
        } else if (size == trends[m].length) {
            trends[m] = Arrays.copyOf(trends[m], size * 2);
        }
        trends[m][size] = nanos;
        trendSizes[m] = size + 1;
    }

    public synchronized void add(Metric metric, long n) {
        requireType(metric, Metric.Type.COUNTER);
        counters.merge(metric, n, Long::sum);
    }

    /** A counter so far, without the cost of a {@link #snapshot}, which sorts every trend. */
    public synchronized long count(Metric metric) {
        requireType(metric, Metric.Type.COUNTER);
        return counters.getOrDefault(metric, 0L);
    }

    public synchronized void rate(Metric metric, boolean sample) {
        requireType(metric, Metric.Type.RATE);
        long[] trueAndAll = rates.computeIfAbsent(metric, m -> new long[2]);
        trueAndAll[0] += sample ? 1 : 0;
        trueAndAll[1]++;
    }

    /** Counts one failure under {@link Metric#ERRORS} and its kind (e.g. {@code http_503}, {@code no_done}). */
    public synchronized void error(String kind) {
        add(Metric.ERRORS, 1);
        errorsByKind.merge(kind, 1L, Long::sum);
    }

    public synchronized Snapshot snapshot(double seconds) {
        Map<Metric, TrendStats> t = new EnumMap<>(Metric.class);
        for (Metric m : Metric.values()) {
            if (m.type == Metric.Type.TREND) {
                long[] values = trends[m.ordinal()];
                long[] sorted = values == null ? new long[0] : Arrays.copyOf(values, trendSizes[m.ordinal()]);
                Arrays.sort(sorted);
                t.put(m, new TrendStats(sorted));
            }
        }
        Map<Metric, long[]> r = new EnumMap<>(Metric.class);
        rates.forEach((m, v) -> r.put(m, v.clone()));
        return new Snapshot(seconds, t, new EnumMap<>(counters), r, new TreeMap<>(errorsByKind));
    }

    private static void requireType(Metric metric, Metric.Type type) {
        if (metric.type != type) {
            throw new IllegalArgumentException(metric.k6Name + " is a " + metric.type + ", not a " + type);
        }
    }

    /** What a run measured, frozen. */
    public record Snapshot(double seconds, Map<Metric, TrendStats> trends, Map<Metric, Long> counters,
                           Map<Metric, long[]> rates, Map<String, Long> errorsByKind) {
        public TrendStats trend(Metric m) {
            return trends.get(m);
        }

        public long count(Metric m) {
            return counters.getOrDefault(m, 0L);
        }

        /** A Rate metric's fraction of true samples; NaN with none. */
        public double fraction(Metric m) {
            long[] v = rates.get(m);
            return v == null || v[1] == 0 ? Double.NaN : (double) v[0] / v[1];
        }
    }

    /** Exact statistics over sorted samples, reported in milliseconds. */
    public record TrendStats(long[] sortedNanos) {
        public int count() {
            return sortedNanos.length;
        }

        public double avg() {
            return count() == 0 ? Double.NaN : Arrays.stream(sortedNanos).average().orElseThrow() / 1e6;
        }

        public double min() {
            return count() == 0 ? Double.NaN : sortedNanos[0] / 1e6;
        }

        public double max() {
            return count() == 0 ? Double.NaN : sortedNanos[count() - 1] / 1e6;
        }

        /** k6's definition: linear interpolation between the two closest ranks. */
        public double percentile(double p) {
            if (count() == 0) {
                return Double.NaN;
            }
            double rank = p / 100 * (count() - 1);
            int lo = (int) Math.floor(rank);
            int hi = Math.min(count() - 1, lo + 1);
            return (sortedNanos[lo] + (rank - lo) * (sortedNanos[hi] - sortedNanos[lo])) / 1e6;
        }
    }
}
