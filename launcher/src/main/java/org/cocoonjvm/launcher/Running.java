package org.cocoonjvm.launcher;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * Keeps a command's Vert.x alive until SIGINT/SIGTERM, then closes it (stopping every node, which
 * drains running streams) within a bounded time; a second signal may cut the drain's grace short.
 */
final class Running {
    private static final Logger log = LoggerFactory.getLogger(Running.class);
    /**
     * Closing Vert.x beyond the nodes' own stop. With a gateway's default 6 s grace, 9 s in all:
     * inside the 10 s that orchestrators wait after SIGTERM before they kill.
     */
    static final long CLOSE_SLACK_MS = 3_000;

    /** How long a node may take to start: load a model, bind its ports, register. */
    private static final long START_SECONDS = 60;

    private Running() {}

    /**
     * Waits for a node's deployment (or anything else its start waits for).
     *
     * @param what names it in the failure: "the gateway", "the workers"
     * @throws Cocoon.StartFailure when it failed or took too long, naming why in one line
     */
    static <T> T await(Future<T> starting, String what) throws InterruptedException {
        return await(starting, what, () -> null);
    }

    /**
     * @param waitingOn what the start still waits for, named when it takes too long; null when unknown
     */
    static <T> T await(Future<T> starting, String what, Supplier<String> waitingOn) throws InterruptedException {
        try {
            return starting.toCompletionStage().toCompletableFuture().get(START_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw new Cocoon.StartFailure(what + " did not start: "
                    + (cause.getMessage() != null ? cause.getMessage() : cause.toString()), cause);
        } catch (TimeoutException e) {
            String why = waitingOn.get();
            throw new Cocoon.StartFailure(what + " did not start within " + START_SECONDS + " s"
                    + (why == null ? "" : ": " + why), e);
        }
    }

    /**
     * @param stopMs     the longest its nodes take to stop: a worker's drain, a gateway's drain and grace
     * @param afterwards closed once Vert.x has closed (running streams settled), such as the
     *                   ledger those settlements were written to
     */
    static void untilSignalled(Vertx vertx, long stopMs, AutoCloseable afterwards) throws InterruptedException {
        untilSignalled(vertx, stopMs, null, afterwards);
    }

    /**
     * @param endGrace run (once) when SIGINT or SIGTERM comes again while stopping: what an
     *                 operator who signals twice wants is the stop without its grace; null: a
     *                 second signal does nothing, as before
     */
    static void untilSignalled(Vertx vertx, long stopMs, Runnable endGrace, AutoCloseable afterwards)
            throws InterruptedException {
        untilSignalled(vertx, stopMs, endGrace, nodesStopped -> { }, afterwards);
    }

    /**
     * @param stopping told, as the stop begins (on the shutdown hook's thread, while the nodes
     *                 stop), the longest until they have stopped; {@code afterwards} is closed then
     */
    static void untilSignalled(Vertx vertx, long stopMs, Runnable endGrace, Consumer<Duration> stopping,
                               AutoCloseable afterwards) throws InterruptedException {
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("cocoon-shutdown").unstarted(() -> {
            if (endGrace != null) {
                onSignalAgain(endGrace);
            }
            long start = System.nanoTime();
            vertx.close().onComplete(ar -> closed.countDown());
            try {
                stopping.accept(Duration.ofMillis(stopMs + CLOSE_SLACK_MS));
            } catch (RuntimeException e) {
                log.warn("could not record that this node is stopping: {}", e.toString());   // the stop goes on
            }
            try {
                // Counted from the signal: a slow ledger behind the record above must not push the
                // stop past the bound that record gave (review U, N-2).
                long leftMs = stopMs + CLOSE_SLACK_MS - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                if (closed.await(leftMs, TimeUnit.MILLISECONDS)) {
                    log.info("stopped in {} ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
                } else {
                    log.warn("not stopped within {} ms; exiting anyway", stopMs + CLOSE_SLACK_MS);
                }
                afterwards.close();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Exception e) {
                System.err.println("cocoon: closing after shutdown failed: " + e);
            }
        }));
        closed.await();
    }

    /**
     * The JVM answers the first SIGINT or SIGTERM by running the shutdown hooks, and a second one
     * waits behind them, so it did nothing for the whole grace. Called from the hook, this takes
     * the signals over for the rest of the stop.
     */
    private static void onSignalAgain(Runnable endGrace) {
        AtomicBoolean ended = new AtomicBoolean();
        SignalHandler handler = signal -> {
            if (ended.compareAndSet(false, true)) {
                log.warn("SIG{} again while stopping: the grace ends now, what still runs fails", signal.getName());
                endGrace.run();
            }
        };
        for (String name : new String[] {"TERM", "INT"}) {
            try {
                Signal.handle(new Signal(name), handler);
            } catch (IllegalArgumentException e) {
                // The JVM keeps the signal to itself (-Xrs, or a platform without it): it then stays as it was.
                log.debug("cannot handle SIG{}: {}", name, e.getMessage());
            }
        }
    }
}
