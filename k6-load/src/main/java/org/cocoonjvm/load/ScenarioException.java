package org.cocoonjvm.load;

import java.time.Duration;

/** A parameter file, an override, a threshold expression or a bench option that cannot be used as written. */
public final class ScenarioException extends RuntimeException {
    public ScenarioException(String message) {
        super(message);
    }

    /** Refuses {@code value} of {@code option} below {@code least}, naming the option, the bound and the value. */
    static void atLeast(String option, long value, long least) {
        if (value < least) {
            throw new ScenarioException(option + " must be at least " + least + ", got " + value);
        }
    }

    /** Refuses a {@code value} of {@code option} that is not above 0 (NaN included). */
    static void positive(String option, double value) {
        if (!(value > 0)) {
            throw new ScenarioException(option + " must be positive, got " + value);
        }
    }

    /** Refuses a {@code phase} (a bench phase, a time series' interval) too short to measure: at least 100 ms. */
    public static void longEnough(String option, Duration phase) {
        if (phase.toMillis() < 100) {
            throw new ScenarioException(option + " must be at least 100ms, got " + K6Duration.format(phase));
        }
    }
}
