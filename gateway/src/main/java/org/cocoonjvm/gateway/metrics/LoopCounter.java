package org.cocoonjvm.gateway.metrics;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.gateway.relay.RelayObserver.GeneratedTokens;

/**
 * A counter added to on the per-token path: each thread adds to its own shard with a plain store
 * (opaque, so a scrape on another thread reads each whole), and a scrape sums the shards, as
 * {@link InterTokenHistogram} does. A Micrometer counter is an adder that every event loop writes.
 */
final class LoopCounter {
    /** Every shard a thread ever made: counts must never go down, so a dead thread's stay. */
    private final List<Shard> shards = new CopyOnWriteArrayList<>();
    private final ThreadLocal<Shard> local = ThreadLocal.withInitial(() -> {
        Shard s = new Shard();
        shards.add(s);
        return s;
    });

    /** The calling thread's shard: add to it from this thread only. */
    Shard local() {
        return local.get();
    }

    double total() {
        long sum = 0;
        for (Shard s : shards) {
            sum += s.count.getOpaque();
        }
        return sum;
    }

    /** One thread's count. */
    static final class Shard implements GeneratedTokens {
        private final AtomicLong count = new AtomicLong();

        void add(long n) {
            count.setOpaque(count.getPlain() + n);
        }

        @Override
        public void generated(int tokens) {
            add(tokens);
        }
    }
}
