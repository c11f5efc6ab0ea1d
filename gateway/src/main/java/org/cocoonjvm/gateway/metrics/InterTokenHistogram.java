package org.cocoonjvm.gateway.metrics;

import io.prometheus.metrics.model.registry.Collector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot.HistogramDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLongArray;
import org.cocoonjvm.gateway.relay.RelayObserver.TokenGaps;

/**
 * {@code cocoon_inter_token_latency_seconds}: the one histogram recorded for every token, so it
 * is kept out of Micrometer. A Micrometer timer updates a count, a total, a decaying maximum and
 * a bucket, each an atomic that every event loop writes: 4.2% of the gateway's event-loop CPU
 * samples at 64 streams (JFR). Here each thread records into its own shard of plain counters,
 * one bucket add per gap however many tokens it brought, and a scrape sums the shards (0.6%).
 *
 * <p>Exposed like the other latency histograms (same buckets, a {@code model} label), without
 * their {@code _max} gauge.
 */
final class InterTokenHistogram implements Collector {
    static final String NAME = "cocoon_inter_token_latency_seconds";
    private static final String HELP = "Between tokens sent to the client; a gap of n tokens is n samples";

    private final long[] boundsNanos;
    /** The same bounds, then +Inf, as the exposition writes them. */
    private final double[] boundsSeconds;
    private final ConcurrentHashMap<String, Model> byModel = new ConcurrentHashMap<>();

    InterTokenHistogram(Duration[] bounds) {
        boundsNanos = new long[bounds.length];
        boundsSeconds = new double[bounds.length + 1];
        for (int i = 0; i < bounds.length; i++) {
            boundsNanos[i] = bounds[i].toNanos();
            boundsSeconds[i] = boundsNanos[i] / 1e9;
        }
        boundsSeconds[bounds.length] = Double.POSITIVE_INFINITY;
    }

    /** Makes the model's series exist (at zero) from now on. */
    void register(String model) {
        byModel.computeIfAbsent(model, Model::new);
    }

    /** The calling thread's shard for the model: record only from this thread. */
    TokenGaps local(String model) {
        return byModel.computeIfAbsent(model, Model::new).local.get();
    }

    @Override
    public String getPrometheusName() {
        return NAME;
    }

    @Override
    public MetricSnapshot collect() {
        HistogramSnapshot.Builder snapshot = HistogramSnapshot.builder().name(NAME).help(HELP);
        byModel.values().forEach(m -> snapshot.dataPoint(m.collect()));
        return snapshot.build();
    }

    private final class Model {
        private final String name;
        /** Every shard a thread ever made: counts must never go down, so a dead thread's stay. */
        private final List<Shard> shards = new CopyOnWriteArrayList<>();
        private final ThreadLocal<Shard> local = ThreadLocal.withInitial(() -> {
            Shard s = new Shard();
            shards.add(s);
            return s;
        });

        Model(String name) {
            this.name = name;
        }

        HistogramDataPointSnapshot collect() {
            long[] counts = new long[boundsSeconds.length];
            long sumNanos = 0;
            for (Shard s : shards) {
                for (int i = 0; i < counts.length; i++) {
                    counts[i] += s.counts.getOpaque(i);
                }
                sumNanos += s.counts.getOpaque(counts.length);
            }
            return HistogramDataPointSnapshot.builder()
                    .classicHistogramBuckets(ClassicHistogramBuckets.of(boundsSeconds, counts))
                    .sum(sumNanos / 1e9)
                    .labels(Labels.of("model", name))
                    .build();
        }
    }

    /**
     * One thread's counters: a bucket per bound, +Inf, then the sum in nanoseconds. Opaque
     * stores are plain moves on x86 and ARM, yet a scrape on another thread sees each whole.
     */
    private final class Shard implements TokenGaps {
        private final AtomicLongArray counts = new AtomicLongArray(boundsNanos.length + 2);

        @Override
        public void gap(long nanos, int tokens) {
            if (tokens <= 0) {
                return;
            }
            long each = nanos / tokens;
            int bucket = 0;
            while (bucket < boundsNanos.length && each > boundsNanos[bucket]) {
                bucket++;
            }
            int sum = boundsNanos.length + 1;
            counts.setOpaque(bucket, counts.getPlain(bucket) + tokens);
            counts.setOpaque(sum, counts.getPlain(sum) + each * tokens);
        }
    }
}
