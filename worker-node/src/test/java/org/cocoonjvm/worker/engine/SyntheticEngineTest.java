package org.cocoonjvm.worker.engine;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The synthetic engine's pacing, on a clock the test holds. */
class SyntheticEngineTest {
    private static final long STEP = 1_000_000;

    @Test
    void aStepStartedLate_endsOnTheSchedule_soOvershootsDoNotAddUp() {
        long due = 50_000_000;
        // The last park returned 140 µs after its deadline: the next step is 860 µs long, not 1 ms.
        assertThat(SyntheticEngine.nextDeadline(due, due + 140_000, STEP)).isEqualTo(due + STEP);
    }

    @Test
    void anEngineMoreThanAStepBehind_startsAfresh_ratherThanBurstingToCatchUp() {
        long due = 50_000_000;
        long now = due + 3 * STEP;  // idle, or stalled, for three steps
        assertThat(SyntheticEngine.nextDeadline(due, now, STEP)).isEqualTo(now + STEP);
        assertThat(SyntheticEngine.nextDeadline(due, due + STEP, STEP)).isEqualTo(due + 2 * STEP);
    }

    @Test
    void pacing_survivesTheClockWrappingAround() {
        long due = Long.MAX_VALUE - 100;
        assertThat(SyntheticEngine.nextDeadline(due, due + 10, STEP)).isEqualTo(due + STEP);
    }
}
