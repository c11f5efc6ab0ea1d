package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class PausesTest {
    private static final Pauses.Spans SPANS = new Pauses.Spans(new long[][] {{100, 110}, {200, 250}, {300, 301}});

    @Test
    void overlap_aWaitAPauseCutsInto_isCaught() {
        assertThat(SPANS.overlap(95, 105)).as("pause starts inside").isTrue();
        assertThat(SPANS.overlap(105, 120)).as("wait starts inside").isTrue();
        assertThat(SPANS.overlap(190, 260)).as("pause wholly inside").isTrue();
        assertThat(SPANS.overlap(210, 220)).as("wait wholly inside").isTrue();
        assertThat(SPANS.overlap(299, 300 + 1)).isTrue();
    }

    @Test
    void overlap_waitsBeforeBetweenAndAfterThePauses_areNot() {
        assertThat(SPANS.overlap(0, 100)).as("ends as one starts").isFalse();
        assertThat(SPANS.overlap(110, 200)).as("between two").isFalse();
        assertThat(SPANS.overlap(301, 400)).as("after the last").isFalse();
        assertThat(new Pauses.Spans(new long[0][]).overlap(0, Long.MAX_VALUE)).isFalse();
    }

    /**
     * A collection asked for in the middle of a window of nanoTime lands inside it: JFR's clock is
     * put on nanoTime's scale, not merely read.
     */
    @Test
    void stop_aCollectionInAWindow_isAPauseInThatWindow() {
        long from;
        long to;
        Pauses.Spans spans;
        try (Pauses pauses = Pauses.start()) {
            from = System.nanoTime();
            System.gc();
            to = System.nanoTime();
            spans = pauses.stop();
        }
        long slack = TimeUnit.MILLISECONDS.toNanos(1);

        assertThat(spans.count()).isPositive();
        assertThat(spans.overlap(from, to)).isTrue();
        assertThat(Arrays.stream(spans.spans()).filter(s -> s[0] < to && s[1] > from))
                .allSatisfy(s -> assertThat(s[0]).isBetween(from - slack, to + slack))
                .allSatisfy(s -> assertThat(s[1]).isBetween(from - slack, to + slack));
        assertThat(spans.totalMillis()).isPositive();
    }
}
