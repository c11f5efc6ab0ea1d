package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The payment rounds' gap: the least while rounds work, doubling per failure up to the most; and the failing run for the log. */
class RoundPacerTest {
    private static final long MIN = TimeUnit.MILLISECONDS.toNanos(5);
    private static final long MOST = TimeUnit.SECONDS.toNanos(1);

    private long now = 1_000_000_000L;
    private final RoundPacer pacer = new RoundPacer(() -> now, MIN, MOST);

    @Test
    void theFirstRound_startsAtOnce_thenEachWaitsTheLeastGap() {
        assertThat(pacer.waitNanos()).isZero();
        pacer.started();
        assertThat(pacer.waitNanos()).isEqualTo(MIN);
        now += MIN;
        assertThat(pacer.waitNanos()).isZero();
    }

    @Test
    void failedRounds_doubleTheGap_upToTheMost_andOnlyTheFirstIsLogged() {
        pacer.started();
        assertThat(pacer.failed()).isTrue();
        assertThat(pacer.waitNanos()).isEqualTo(MIN << 1);
        pacer.started();
        assertThat(pacer.failed()).isFalse();
        assertThat(pacer.waitNanos()).isEqualTo(MIN << 2);
        for (int i = 0; i < 20; i++) {
            pacer.started();
            pacer.failed();
        }
        assertThat(pacer.waitNanos()).isEqualTo(MOST);
        assertThat(pacer.failedRounds()).isEqualTo(22);
    }

    @Test
    void aRoundThatWorks_endsTheFailingRun_timedFromTheFirstFailedStart() {
        pacer.started();
        pacer.failed();
        now += TimeUnit.MILLISECONDS.toNanos(250);
        pacer.started();
        pacer.failed();
        now += TimeUnit.MILLISECONDS.toNanos(250);
        pacer.started();
        assertThat(pacer.failing()).isTrue();
        assertThat(pacer.failingMillis()).isEqualTo(500);
        pacer.succeeded();
        assertThat(pacer.failing()).isFalse();
        assertThat(pacer.waitNanos()).isEqualTo(MIN);
    }
}
