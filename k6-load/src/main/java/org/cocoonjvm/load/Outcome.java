package org.cocoonjvm.load;

/**
 * How one request ended, with its timings in nanoseconds.
 *
 * @param kind       how it ended
 * @param errorKind  for {@link Kind#ERROR}: a short stable tag ({@code http_503}, {@code transport}, {@code in_band_timeout}, {@code no_done}, …)
 * @param ttftNanos  start to the first data event, or the whole response when not streamed; -1 if none came
 * @param gapsNanos  gaps between consecutive content events; the record's own, not copied
 * @param e2eNanos   start to the end, whatever the end was
 * @param startNanos {@link System#nanoTime()} at the start: where the request lies among other events of the run
 */
public record Outcome(Kind kind, String errorKind, long ttftNanos, long[] gapsNanos, long tokens, long e2eNanos, long startNanos) {
    public enum Kind { COMPLETED, ABORTED, REJECTED, ERROR, INTERRUPTED }

    /** Records this request into the shared metrics, the same way for every caller. */
    public void record(Recorder recorder) {
        recorder.add(Metric.REQUESTS, 1);
        if (ttftNanos >= 0) {
            recorder.trend(Metric.TTFT, ttftNanos);
        }
        for (long g : gapsNanos) {
            recorder.trend(Metric.ITL, g);
        }
        recorder.add(Metric.TOKENS, tokens);
        switch (kind) {
            case COMPLETED -> {
                recorder.add(Metric.COMPLETED, 1);
                recorder.trend(Metric.E2E, e2eNanos);
            }
            case ABORTED -> recorder.add(Metric.ABORTED, 1);
            case REJECTED -> recorder.add(Metric.REJECTED, 1);
            case ERROR -> recorder.error(errorKind);
            case INTERRUPTED -> recorder.add(Metric.INTERRUPTED, 1);
        }
        recorder.rate(Metric.ERROR_RATE, kind == Kind.ERROR);
    }
}
