package org.cocoonjvm.gateway.limits;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;

/**
 * Per-key request, token and concurrency limits. A request takes a {@link Permit} before it is
 * routed (or gets 429 with {@code Retry-After}) and gives it back when it ends, correcting the
 * token count from the estimate it took to what it used. Lock-free: buckets and counters are
 * atomics shared by every event loop (a key whose limits changed takes a lock once, to replace its buckets).
 */
public final class RateLimiter {
    private final LongSupplier nanoClock;
    private final ConcurrentHashMap<String, KeyState> keys = new ConcurrentHashMap<>();

    public RateLimiter(LongSupplier nanoClock) {
        this.nanoClock = nanoClock;
    }

    /** One request's hold on its key's limits; {@link #release} exactly once. */
    public interface Permit {
        Permit NONE = actualTokens -> { };

        /** @param actualTokens prompt plus completion tokens the request really used */
        void release(long actualTokens);
    }

    /**
     * A request the key's limits do not admit now. Without a stack trace: a refusal is an answer, not a fault.
     */
    public static final class Refused extends RuntimeException {
        private final ApiException reason;
        private final boolean runningMayLift;

        Refused(ApiException reason, boolean runningMayLift) {
            super(reason.getMessage(), null, false, false);
            this.reason = reason;
            this.runningMayLift = runningMayLift;
        }

        /** The {@code RATE_LIMITED} answer naming the limit, with {@code Retry-After}. */
        public ApiException reason() {
            return reason;
        }

        /**
         * What was missing is held by a request of the key still running (a concurrency slot, the
         * unused part of a token estimate), so its end may make room; a requests-per-minute
         * refusal only waits for the clock.
         */
        public boolean runningMayLift() {
            return runningMayLift;
        }
    }

    /**
     * @param estimatedTokens what the request may use, taken now and corrected on release
     * @throws Refused when a limit is reached
     */
    public Permit acquire(String keyId, KeyLimits limits, long estimatedTokens) {
        if (limits.equals(KeyLimits.UNLIMITED)) {
            return Permit.NONE;
        }
        KeyState key = keys.computeIfAbsent(keyId, id -> new KeyState(limits, nanoClock));
        Buckets buckets = key.buckets(limits, nanoClock);
        if (limits.maxConcurrent() > 0 && key.inFlight.incrementAndGet() > limits.maxConcurrent()) {
            key.inFlight.decrementAndGet();
            throw new Refused(ApiException.retryLater(ErrorKind.RATE_LIMITED, "This API key already has " + limits.maxConcurrent()
                    + " requests in flight, its limit; retry when one finishes.", 1), true);
        }
        long wait = buckets.requests == null ? 0 : buckets.requests.tryTake(1, 0);
        if (wait > 0) {
            key.releaseConcurrency(limits);
            throw new Refused(ApiException.retryLater(ErrorKind.RATE_LIMITED,
                    "This API key's limit of " + limits.requestsPerMinute() + " requests per minute is reached.", (int) wait), false);
        }
        long held = key.estimatedInFlight.get();
        wait = buckets.tokens == null ? 0 : buckets.tokens.tryTake(estimatedTokens, held);
        if (wait > 0) {
            key.releaseConcurrency(limits);
            if (buckets.requests != null) {
                buckets.requests.adjust(1);  // this request did not start after all
            }
            throw new Refused(ApiException.retryLater(ErrorKind.RATE_LIMITED, "This API key's limit of " + limits.tokensPerMinute()
                    + " tokens per minute is reached (this request may use " + estimatedTokens + ").", (int) wait), held > 0);
        }
        key.estimatedInFlight.addAndGet(estimatedTokens);
        return new Permit() {
            private boolean released;

            @Override
            public void release(long actualTokens) {
                if (released) {
                    return;
                }
                released = true;
                key.releaseConcurrency(limits);
                key.estimatedInFlight.addAndGet(-estimatedTokens);
                if (buckets.tokens != null) {
                    buckets.tokens.adjust(estimatedTokens - actualTokens);
                }
            }
        };
    }

    /** A key's buckets for one set of its limits. */
    private record Buckets(KeyLimits limits, TokenBucket requests, TokenBucket tokens) {
        Buckets(KeyLimits limits, LongSupplier clock) {
            this(limits, limits.requestsPerMinute() > 0 ? new TokenBucket(limits.requestsPerMinute(), clock) : null,
                    limits.tokensPerMinute() > 0 ? new TokenBucket(limits.tokensPerMinute(), clock) : null);
        }
    }

    private static final class KeyState {
        private volatile Buckets buckets;
        final AtomicInteger inFlight = new AtomicInteger();
        /**
         * Tokens the running requests took up front; most come back when they end (a request without
         * max_tokens is estimated at the whole context window), so Retry-After counts them as back.
         */
        final AtomicLong estimatedInFlight = new AtomicLong();

        KeyState(KeyLimits limits, LongSupplier clock) {
            buckets = new Buckets(limits, clock);
        }

        /**
         * The buckets of {@code limits}: new, full ones once the key's limits changed (an edited keys
         * file). Running requests keep their concurrency slots; a request started under no
         * concurrency limit took none, so a new limit counts only the requests after it.
         */
        Buckets buckets(KeyLimits limits, LongSupplier clock) {
            Buckets current = buckets;
            if (current.limits.equals(limits)) {
                return current;
            }
            synchronized (this) {
                if (!buckets.limits.equals(limits)) {
                    buckets = new Buckets(limits, clock);
                }
                return buckets;
            }
        }

        void releaseConcurrency(KeyLimits limits) {
            if (limits.maxConcurrent() > 0) {
                inFlight.decrementAndGet();
            }
        }
    }
}
