package org.cocoonjvm.gateway.registry;

import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Prefix affinity for {@link WorkerRegistry#pick}: per prompt prefix, the worker that last served
 * it, whose KV cache may still hold the prefix. Apart from the registry since it is state of its own
 * (a bounded map written by every pick with a prefix), read and written from any thread lock-free.
 */
final class PrefixAffinity {
    /** An affine worker is preferred while its in-flight count is within this of the least loaded. */
    static final int AFFINITY_SLACK = 2;
    private static final int AFFINITY_ENTRIES = 10_000;

    /** prefix hash -> the worker that last served it (its KV cache may still hold the prefix). */
    private final ConcurrentHashMap<Long, String> affinity = new ConcurrentHashMap<>();

    /**
     * The worker that last served the prompt prefix {@code affinityKey}, while it is among the
     * candidates within {@value #AFFINITY_SLACK} requests of the least loaded; else {@code leastLoaded}.
     * Remembers the choice for the prefix.
     */
    RegisteredWorker prefer(long affinityKey, List<RegisteredWorker> candidates, RegisteredWorker leastLoaded) {
        String preferred = affinity.get(affinityKey);
        int minInFlight = candidates.stream().mapToInt(RegisteredWorker::inFlight).min().orElse(0);
        RegisteredWorker chosen = leastLoaded;
        for (RegisteredWorker w : candidates) {
            if (w.id().equals(preferred) && w.inFlight() <= minInFlight + AFFINITY_SLACK) {
                chosen = w;
            }
        }
        if (affinity.size() > AFFINITY_ENTRIES) {
            affinity.clear();  // crude bound: a cold cache costs one re-prefill, not correctness
        }
        affinity.put(affinityKey, chosen.id());
        return chosen;
    }
}
