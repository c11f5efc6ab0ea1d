package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class LoopWatchTest {
    private final Vertx vertx = Vertx.vertx();
    private final Context context = vertx.getOrCreateContext();

    @AfterEach
    void closeVertx() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    /**
     * Tasks queued while the loop was blocked, and those queued as it resumed (before its timer
     * ran again), see the stall; a moment later it is over.
     */
    @Test
    void aLoopBlockedPastTheThreshold_isSeenStalled_byTasksQueuedDuringItAndAfter_thenNoMore() throws Exception {
        LoopWatch watch = onContext(() -> new LoopWatch(vertx));
        assertThat(onContext(watch::stalledLately)).isFalse();

        CompletableFuture<Void> resumed = new CompletableFuture<>();
        context.runOnContext(v -> {
            sleep(TimeUnit.NANOSECONDS.toMillis(LoopWatch.STALLED_NANOS) + 300);  // a GC pause, a SIGSTOP
            resumed.complete(null);
        });
        CompletableFuture<Boolean> queuedDuring = new CompletableFuture<>();
        context.runOnContext(v -> queuedDuring.complete(watch.stalledLately()));
        resumed.get(5, TimeUnit.SECONDS);

        assertThat(queuedDuring.get(5, TimeUnit.SECONDS)).isTrue();
        assertThat(onContext(watch::stalledLately)).as("queued after it").isTrue();
        sleep(TimeUnit.NANOSECONDS.toMillis(LoopWatch.STALLED_NANOS) + 300);
        assertThat(onContext(watch::stalledLately)).as("a moment later").isFalse();
    }

    /**
     * What was sent before a stall, or in the beat it began in, is from before it, during the stall
     * and after; what is sent once the loop runs again is not (review Y, Y-8: a PING from before
     * a stall is not joined after it).
     */
    @Test
    void whatWasSentBeforeAStall_isBeforeIt_duringAndAfter_andWhatIsSentAfterIsNot() throws Exception {
        LoopWatch watch = onContext(() -> new LoopWatch(vertx));
        sleep(300);
        long sentBefore = System.nanoTime();
        assertThat(onContext(() -> watch.stalledSince(sentBefore))).isFalse();

        CompletableFuture<Void> resumed = new CompletableFuture<>();
        context.runOnContext(v -> {
            sleep(TimeUnit.NANOSECONDS.toMillis(LoopWatch.STALLED_NANOS) + 300);
            resumed.complete(null);
        });
        CompletableFuture<Boolean> queuedDuring = new CompletableFuture<>();
        context.runOnContext(v -> queuedDuring.complete(watch.stalledSince(sentBefore)));
        resumed.get(5, TimeUnit.SECONDS);
        assertThat(queuedDuring.get(5, TimeUnit.SECONDS)).as("seen as the loop resumes").isTrue();

        sleep(300);
        assertThat(onContext(() -> watch.stalledSince(sentBefore))).as("after it").isTrue();
        long sentAfter = System.nanoTime();
        assertThat(onContext(() -> watch.stalledSince(sentAfter))).as("sent after it").isFalse();
    }

    private <T> T onContext(java.util.function.Supplier<T> work) throws Exception {
        CompletableFuture<T> result = new CompletableFuture<>();
        context.runOnContext(v -> result.complete(work.get()));
        return result.get(5, TimeUnit.SECONDS);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
