package org.cocoonjvm.load;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingStream;

/**
 * The process's stop-the-world pauses (safepoints: young collections, and the JVM's other
 * operations that stop every Java thread) while a benchmark runs, read from JFR's event stream and
 * put on {@link System#nanoTime()}'s scale. Client, gateway and worker share the process, so a
 * pause stops all three, and a request whose wait for its first token a pause overlapped waited it
 * out. With them the bench can tell a path's TTFT tail apart into pauses and the rest: on 2 cores
 * about a third of the gateway path's slowest 1% overlapped one (docs/benchmarks.md, twenty-seventh
 * session). A safepoint runs from its begin event's start to its end event's end, so the time
 * threads take to leave one is in it: on the development VM that was a median 0.5 ms beyond what
 * the GC log calls the pause.
 */
final class Pauses implements AutoCloseable {
    private static final String MARK = "org.cocoonjvm.load.ClockMark";

    /** Committed once, at the start: its JFR time and the nanoTime read inside it align the two clocks. */
    @Name(MARK)
    @Label("Clock mark")
    @StackTrace(false)
    static final class ClockMark extends Event {
    }

    private final RecordingStream stream = new RecordingStream();
    /** Safepoint id to its start, until its end event comes. */
    private final Map<Long, Instant> begun = new ConcurrentHashMap<>();
    private final List<Instant[]> spans = new ArrayList<>();
    private Instant markAt;
    private long markNanos;

    private Pauses() {
        stream.enable("jdk.SafepointBegin").withoutThreshold().withoutStackTrace();
        stream.enable("jdk.SafepointEnd").withoutThreshold().withoutStackTrace();
        stream.enable(ClockMark.class);
        stream.onEvent("jdk.SafepointBegin", e -> begun.put(e.getLong("safepointId"), e.getStartTime()));
        stream.onEvent("jdk.SafepointEnd", this::ended);
        stream.onEvent(MARK, e -> {
            synchronized (this) {
                markAt = e.getStartTime();
            }
        });
    }

    /** Starts reading pauses; {@link #stop()} gives them. */
    static Pauses start() {
        Pauses pauses = new Pauses();
        pauses.stream.startAsync();
        ClockMark mark = new ClockMark();
        mark.begin();
        long nanos = System.nanoTime();
        mark.commit();
        synchronized (pauses) {
            pauses.markNanos = nanos;
        }
        return pauses;
    }

    private void ended(RecordedEvent end) {
        Instant start = begun.remove(end.getLong("safepointId"));
        if (start != null) {
            synchronized (this) {
                spans.add(new Instant[] {start, end.getEndTime()});
            }
        }
    }

    /**
     * Stops reading, every event read first.
     *
     * @return each pause as {@code [start, end]} in nanoTime, in order of start
     */
    Spans stop() {
        stream.stop();
        synchronized (this) {
            if (markAt == null) {
                throw new IllegalStateException("JFR never delivered the clock mark: pauses cannot be placed");
            }
            long[][] placed = spans.stream()
                    .map(s -> new long[] {nanos(s[0]), nanos(s[1])})
                    .sorted(Comparator.comparingLong(s -> s[0]))
                    .toArray(long[][]::new);
            return new Spans(placed);
        }
    }

    private long nanos(Instant at) {
        return markNanos + Duration.between(markAt, at).toNanos();
    }

    @Override
    public void close() {
        stream.close();
    }

    /** Pauses on nanoTime's scale, sorted by start; safepoints never overlap one another. */
    record Spans(long[][] spans) {
        /** Whether a pause overlapped {@code [from, to]}. */
        boolean overlap(long from, long to) {
            // The first pause ending after `from`: it or none overlaps, as the ones after it start later still.
            int lo = 0;
            int hi = spans.length;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (spans[mid][1] <= from) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return lo < spans.length && spans[lo][0] < to;
        }

        int count() {
            return spans.length;
        }

        double totalMillis() {
            return Arrays.stream(spans).mapToLong(s -> s[1] - s[0]).sum() / 1e6;
        }
    }
}
