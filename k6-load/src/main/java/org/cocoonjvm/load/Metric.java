package org.cocoonjvm.load;

import java.util.Arrays;

/**
 * The metrics both tools record, under the names the k6 scripts use, so a threshold in a
 * parameter file means the same thing to k6 and to {@link LoadDriver}.
 */
public enum Metric {
    /** Request start to the first SSE data event (comments ignored); a non-streamed request's whole response. */
    TTFT("ttft", Type.TREND),
    /** Gap between consecutive data events carrying content. */
    ITL("itl", Type.TREND),
    /** Request start to its normal end ({@code [DONE]}, or the whole JSON body). */
    E2E("e2e", Type.TREND),
    /** Completion tokens received (the usage chunk's count; content events when there is none). */
    TOKENS("tokens", Type.COUNTER),
    REQUESTS("requests", Type.COUNTER),
    COMPLETED("completed", Type.COUNTER),
    /** Streams the client cut on purpose (the disconnect storm). */
    ABORTED("aborted", Type.COUNTER),
    /** 429: rate limits, or flex capacity exhausted; expected under bursts, so counted apart from errors. */
    REJECTED("rejected", Type.COUNTER),
    /** Every other failure: statuses, transport errors, in-band errors, streams ending without {@code [DONE]}. */
    ERRORS("errors", Type.COUNTER),
    /** Fraction of requests that ended in {@link #ERRORS}. */
    ERROR_RATE("error_rate", Type.RATE),
    /** Arrivals skipped because the flow already had {@code max_vus} requests in flight (k6's built-in name). */
    DROPPED_ITERATIONS("dropped_iterations", Type.COUNTER),
    /** Requests still running when the run's time was up, cut by the driver. */
    INTERRUPTED("interrupted", Type.COUNTER);

    /** k6's metric types; each allows its own threshold aggregations. */
    public enum Type { TREND, COUNTER, RATE }

    public final String k6Name;
    public final Type type;

    Metric(String k6Name, Type type) {
        this.k6Name = k6Name;
        this.type = type;
    }

    public static Metric byName(String name) {
        return Arrays.stream(values()).filter(m -> m.k6Name.equals(name)).findFirst()
                .orElseThrow(() -> new ScenarioException("unknown metric '" + name + "' in thresholds; known: "
                        + Arrays.stream(values()).map(m -> m.k6Name).toList()));
    }
}
