package org.cocoonjvm.worker.engine;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The synthetic engine's pacing, on times the test gives it. */
class SyntheticEngineTest {
    private static final long STEP = 1_000_000;
    private static final long DUE = 50_000_000;

    @Test
    void aBusyEngine_endsEachStepOneStepAfterTheLast_soLateWakeUpsDoNotAddUp() {
        // The last park woke 140 µs late: the next step is 860 µs long, not 1 ms.
        assertThat(SyntheticEngine.deadline(DUE, DUE + 140_000, STEP, true)).isEqualTo(DUE + STEP);
    }

    @Test
    void aBatchOfNewSequencesOnly_takesAWholeStep_asAnIdleEngineWould() {
        assertThat(SyntheticEngine.deadline(DUE, DUE + 300_000, STEP, false)).isEqualTo(DUE + 300_000 + STEP);
    }

    @Test
    void anEngineMoreThanAStepBehind_startsAfresh_ratherThanBurstingToCatchUp() {
        long now = DUE + 3 * STEP;
        assertThat(SyntheticEngine.deadline(DUE, now, STEP, true)).isEqualTo(now + STEP);
        assertThat(SyntheticEngine.deadline(DUE, DUE + STEP, STEP, true)).isEqualTo(DUE + 2 * STEP);
    }

    @Test
    void pacing_survivesTheClockWrappingAround() {
        long due = Long.MAX_VALUE - 100;
        assertThat(SyntheticEngine.deadline(due, due + 10, STEP, true)).isEqualTo(due + STEP);
    }
}
