package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Keeps a command's Vert.x alive until SIGINT/SIGTERM, then closes it (stopping every node, which
 * drains running streams) within a bounded time.
 */
final class Running {
    /** Worker drain plus gateway close must fit in the 10 s that operators are promised. */
    static final long SHUTDOWN_BUDGET_MS = 9_000;

    private Running() {}

    static void untilSignalled(Vertx vertx) throws InterruptedException {
        untilSignalled(vertx, () -> { });
    }

    static void untilSignalled(Vertx vertx, AutoCloseable afterwards) throws InterruptedException {
        untilSignalled(vertx, 0, afterwards);
    }

    /**
     * @param drainMs    how long a node goes on serving after the signal before it drains (a
     *                   gateway's {@code --drain-seconds}), on top of the budget
     * @param afterwards closed once Vert.x has closed (running streams settled), such as the
     *                   ledger those settlements were written to
     */
    static void untilSignalled(Vertx vertx, long drainMs, AutoCloseable afterwards) throws InterruptedException {
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("cocoon-shutdown").unstarted(() -> {
            vertx.close().onComplete(ar -> closed.countDown());
            try {
                closed.await(drainMs + SHUTDOWN_BUDGET_MS, TimeUnit.MILLISECONDS);
                afterwards.close();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Exception e) {
                System.err.println("cocoon: closing after shutdown failed: " + e);
            }
        }));
        closed.await();
    }
}
