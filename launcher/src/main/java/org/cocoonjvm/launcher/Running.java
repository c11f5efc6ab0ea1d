package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Keeps a command's Vert.x alive until SIGINT/SIGTERM, then closes it (stopping every node, which
 * drains running streams) within a bounded time.
 */
final class Running {
    /**
     * Closing Vert.x beyond the nodes' own stop. With a gateway's default 6 s grace, 9 s in all:
     * inside the 10 s that orchestrators wait after SIGTERM before they kill.
     */
    static final long CLOSE_SLACK_MS = 3_000;

    private Running() {}

    /**
     * @param stopMs     the longest its nodes take to stop: a worker's drain, a gateway's drain and grace
     * @param afterwards closed once Vert.x has closed (running streams settled), such as the
     *                   ledger those settlements were written to
     */
    static void untilSignalled(Vertx vertx, long stopMs, AutoCloseable afterwards) throws InterruptedException {
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("cocoon-shutdown").unstarted(() -> {
            vertx.close().onComplete(ar -> closed.countDown());
            try {
                closed.await(stopMs + CLOSE_SLACK_MS, TimeUnit.MILLISECONDS);
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
