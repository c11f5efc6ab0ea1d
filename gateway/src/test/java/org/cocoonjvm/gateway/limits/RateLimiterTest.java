package org.cocoonjvm.gateway.limits;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The limiter alone, with a hand-driven clock. */
class RateLimiterTest {
    private final AtomicLong now = new AtomicLong();
    private final RateLimiter limiter = new RateLimiter(now::get);

    @Test
    void requestsPerMinute_refillContinuously_andSayWhenToComeBack() {
        KeyLimits limits = new KeyLimits(60, 0, 0);  // one a second
        for (int i = 0; i < 60; i++) {
            limiter.acquire("k", limits, 0).release(0);
        }
        assertThatThrownBy(() -> limiter.acquire("k", limits, 0))
                .isInstanceOfSatisfying(RateLimiter.Refused.class, e -> {
                    assertThat(e.reason().retryAfterSeconds()).isEqualTo(1);
                    assertThat(e.runningMayLift()).as("only the clock gives requests back").isFalse();
                });
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(1_001));
        limiter.acquire("k", limits, 0).release(0);
    }

    @Test
    void tokens_takenAsEstimated_correctedOnRelease() {
        KeyLimits limits = new KeyLimits(0, 1_000, 0);
        RateLimiter.Permit big = limiter.acquire("k", limits, 900);
        assertThatThrownBy(() -> limiter.acquire("k", limits, 200)).isInstanceOfSatisfying(RateLimiter.Refused.class,
                e -> assertThat(e.runningMayLift()).as("the running request's estimate comes back").isTrue());
        big.release(100);  // it used far less than estimated: 800 come back
        limiter.acquire("k", limits, 800).release(800);
    }

    @Test
    void tokens_retryAfter_countsWhatRunningRequestsWillGiveBack() {
        KeyLimits limits = new KeyLimits(0, 1_000, 0);  // 1,000 a minute: 1 takes 60 ms
        // A request without max_tokens is estimated at the whole window and overdraws the full bucket.
        RateLimiter.Permit running = limiter.acquire("k", limits, 4_000);
        assertThatThrownBy(() -> limiter.acquire("k", limits, 100)).isInstanceOfSatisfying(RateLimiter.Refused.class,
                e -> assertThat(e.reason().retryAfterSeconds()).as("its estimate comes back when it ends").isEqualTo(1));
        running.release(3_900);  // it did use nearly all of it: now the wait is real
        assertThatThrownBy(() -> limiter.acquire("k", limits, 100)).isInstanceOfSatisfying(RateLimiter.Refused.class,
                e -> assertThat(e.reason().retryAfterSeconds()).isEqualTo(180));  // from -2,900 to 100 at 1,000 a minute
    }

    @Test
    void concurrency_countsInFlight_andReleaseIsIdempotent() {
        KeyLimits limits = new KeyLimits(0, 0, 1);
        RateLimiter.Permit first = limiter.acquire("k", limits, 0);
        assertThatThrownBy(() -> limiter.acquire("k", limits, 0)).isInstanceOfSatisfying(RateLimiter.Refused.class,
                e -> assertThat(e.runningMayLift()).isTrue());
        first.release(0);
        first.release(0);
        RateLimiter.Permit second = limiter.acquire("k", limits, 0);
        assertThatThrownBy(() -> limiter.acquire("k", limits, 0)).isInstanceOf(RateLimiter.Refused.class);
        second.release(0);
    }

    /** An edited keys file re-limits a key: its next request is held to the new limits, its running ones keep their slots. */
    @Test
    void aKeysLimitsChanged_theNextRequestMeetsTheNewOnes() {
        KeyLimits one = new KeyLimits(1, 0, 1);
        RateLimiter.Permit running = limiter.acquire("k", one, 0);
        assertThatThrownBy(() -> limiter.acquire("k", one, 0)).isInstanceOf(RateLimiter.Refused.class);

        KeyLimits more = new KeyLimits(100, 0, 2);
        RateLimiter.Permit second = limiter.acquire("k", more, 0);  // fresh buckets; the running request still holds a slot
        assertThatThrownBy(() -> limiter.acquire("k", more, 0)).isInstanceOfSatisfying(RateLimiter.Refused.class,
                e -> assertThat(e.reason().getMessage()).contains("2 requests in flight"));
        running.release(0);
        limiter.acquire("k", more, 0).release(0);
        second.release(0);
    }

    @Test
    void keysAreIndependent() {
        KeyLimits limits = new KeyLimits(1, 0, 0);
        limiter.acquire("a", limits, 0);
        limiter.acquire("b", limits, 0);
        assertThatThrownBy(() -> limiter.acquire("a", limits, 0)).isInstanceOf(RateLimiter.Refused.class);
    }
}
