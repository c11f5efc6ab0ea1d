package org.cocoonjvm.gateway.bench;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.VerticleBase;
import io.vertx.core.internal.ContextInternal;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.relay.EventLoopTimers;

/**
 * A streaming request's timers, set and cancelled as the gateway does, by Vert.x timers and by
 * {@link EventLoopTimers}: each request sets five (its body's arrival, its deadline, the status
 * hold, the call's opening, a keep-alive; the default delays) on a context of its own, and
 * {@value #IN_FLIGHT} requests later, as it ends, cancels them. None fires. One event loop; rounds
 * of the two alternate, so a busy neighbour hurts them alike; reported: the median round's
 * event-loop CPU per request. Not a test: see docs/benchmarks.md.
 *
 * <p>Arguments: SECONDS_PER_ROUND ROUNDS
 */
public final class TimersBenchmark {
    private static final int IN_FLIGHT = 64;
    private static final long[] DELAYS_MS = {30_000, 600_000, 2_000, 15_000, 5_000};
    private static final int PER_TASK = 5_000;
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    public static void main(String[] args) throws Exception {
        double seconds = Double.parseDouble(args[0]);
        int rounds = Integer.parseInt(args[1]);
        Vertx vertx = Vertx.vertx();
        // A deployed verticle's loop, as a front's: its Vert.x timers take the deployment's close hooks.
        CompletableFuture<EventLoopTimers> made = new CompletableFuture<>();
        CompletableFuture<ContextInternal> deployed = new CompletableFuture<>();
        vertx.deployVerticle(new VerticleBase() {
            @Override
            public Future<?> start() {
                made.complete(new EventLoopTimers(vertx));
                deployed.complete((ContextInternal) context);
                return Future.succeededFuture();
            }
        }).await(10, TimeUnit.SECONDS);
        ContextInternal loop = deployed.get();
        Way vertxTimers = new VertxTimers(vertx);
        Way lanes = new Lanes(made.get());
        for (Way way : new Way[] {vertxTimers, lanes}) {  // warm-up
            round(loop, way, seconds / 2);
        }
        double[][] nanos = new double[2][rounds];
        for (int r = 0; r < rounds; r++) {
            nanos[0][r] = round(loop, vertxTimers, seconds);
            nanos[1][r] = round(loop, lanes, seconds);
        }
        double vertxMedian = median(nanos[0]);
        double lanesMedian = median(nanos[1]);
        System.out.printf("Vert.x timers:   %.0f ns of event-loop CPU per request (rounds %s)%n", vertxMedian, rounded(nanos[0]));
        System.out.printf("EventLoopTimers: %.0f ns of event-loop CPU per request (rounds %s)%n", lanesMedian, rounded(nanos[1]));
        System.out.printf("EventLoopTimers / Vert.x: %.2f%n", lanesMedian / vertxMedian);
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** @return the event loop's CPU nanoseconds per request over a round of about {@code seconds} */
    private static double round(ContextInternal loop, Way way, double seconds) throws Exception {
        CompletableFuture<double[]> done = new CompletableFuture<>();
        long until = System.nanoTime() + (long) (seconds * 1e9);
        double[] cpuAndRequests = new double[2];
        Handler<Void>[] task = new Handler[1];
        task[0] = v -> {
            ContextInternal request = loop.duplicate();  // as a request's handlers run; one per task, not per request
            long cpu = THREADS.getCurrentThreadCpuTime();
            request.emit(null, r -> way.requests(PER_TASK));
            cpuAndRequests[0] += THREADS.getCurrentThreadCpuTime() - cpu;
            cpuAndRequests[1] += PER_TASK;
            if (System.nanoTime() < until) {
                loop.runOnContext(task[0]);  // other events of the loop run between tasks, as between requests
            } else {
                way.endAll();
                done.complete(cpuAndRequests);
            }
        };
        loop.runOnContext(task[0]);
        double[] result = done.get((long) seconds + 30, TimeUnit.SECONDS);
        return result[0] / result[1];
    }

    private static String rounded(double[] values) {
        return Arrays.toString(Arrays.stream(values).mapToLong(Math::round).toArray());
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    /** Requests in flight in a ring: each new one ends the oldest. */
    private interface Way {
        void requests(int count);

        void endAll();
    }

    private static final class VertxTimers implements Way {
        private final Vertx vertx;
        private final long[] ring = new long[IN_FLIGHT * DELAYS_MS.length];
        private final Handler<Long> none = id -> { };
        private int next;

        VertxTimers(Vertx vertx) {
            this.vertx = vertx;
            Arrays.fill(ring, -1);
        }

        @Override
        public void requests(int count) {
            for (int i = 0; i < count; i++) {
                int at = next * DELAYS_MS.length;
                for (int t = 0; t < DELAYS_MS.length; t++) {
                    if (ring[at + t] >= 0) {
                        vertx.cancelTimer(ring[at + t]);
                    }
                    ring[at + t] = vertx.setTimer(DELAYS_MS[t], none);
                }
                next = (next + 1) % IN_FLIGHT;
            }
        }

        @Override
        public void endAll() {
            for (int i = 0; i < ring.length; i++) {
                if (ring[i] >= 0) {
                    vertx.cancelTimer(ring[i]);
                    ring[i] = -1;
                }
            }
        }
    }

    private static final class Lanes implements Way {
        private final EventLoopTimers timers;
        private final EventLoopTimers.Timer[] ring = new EventLoopTimers.Timer[IN_FLIGHT * DELAYS_MS.length];
        private final Handler<Void> none = v -> { };
        private int next;

        Lanes(EventLoopTimers timers) {
            this.timers = timers;
        }

        @Override
        public void requests(int count) {
            for (int i = 0; i < count; i++) {
                int at = next * DELAYS_MS.length;
                for (int t = 0; t < DELAYS_MS.length; t++) {
                    EventLoopTimers.cancel(ring[at + t]);
                    ring[at + t] = timers.set(DELAYS_MS[t], none);
                }
                next = (next + 1) % IN_FLIGHT;
            }
        }

        @Override
        public void endAll() {
            for (int i = 0; i < ring.length; i++) {
                EventLoopTimers.cancel(ring[i]);
                ring[i] = null;
            }
        }
    }
}
