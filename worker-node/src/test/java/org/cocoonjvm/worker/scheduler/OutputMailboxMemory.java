package org.cocoonjvm.worker.scheduler;

import io.vertx.core.Context;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;

/**
 * A benchmark, not a test: the heap held by {@code N} mailboxes whose readers stalled (write
 * queue full) with {@code T} tokens each pending, and the engine thread's time per token. Each
 * token's text is a new string, as a detokenizer's is. Run from the repo root after a build:
 * {@code java -cp "worker-node/target/test-classes:launcher/target/lib/*"
 * org.cocoonjvm.worker.scheduler.OutputMailboxMemory 1000 4096}; docs/benchmarks.md has results.
 */
public final class OutputMailboxMemory {
    private OutputMailboxMemory() {
    }

    public static void main(String[] args) throws Exception {
        int mailboxes = Integer.parseInt(args[0]);
        int tokens = Integer.parseInt(args[1]);
        Vertx vertx = Vertx.vertx();
        Context context = vertx.getOrCreateContext();
        EventTarget stalled = new EventTarget() {
            @Override
            public void accepted(int promptTokens) {
            }

            @Override
            public void delta(Delta delta) {
            }

            @Override
            public void finish(Final fin) {
            }

            @Override
            public boolean writeQueueFull() {
                return true;
            }

            @Override
            public void drainHandler(Handler<Void> handler) {
            }
        };
        for (int round = 0; round < 3; round++) {  // warm-up
            fill(new OutputMailbox(context, stalled), 200_000);
        }
        long before = settledHeap();
        List<OutputMailbox> held = new ArrayList<>();
        long start = System.nanoTime();
        for (int i = 0; i < mailboxes; i++) {
            OutputMailbox mailbox = new OutputMailbox(context, stalled);
            held.add(mailbox);
            fill(mailbox, tokens);
        }
        long nanos = System.nanoTime() - start;
        long retained = settledHeap() - before;
        System.out.printf("%d stalled mailboxes x %d tokens: %.1f MiB held (%.1f bytes a token), %.0f ns a token on the"
                + " engine thread%n", held.size(), tokens, retained / 1048576.0, retained / (double) mailboxes / tokens,
                nanos / (double) mailboxes / tokens);
        vertx.close();
    }

    private static void fill(OutputMailbox mailbox, int tokens) {
        for (int i = 0; i < tokens; i++) {
            mailbox.token(i, "t" + (i & 7) + "k ");
        }
    }

    private static long settledHeap() throws InterruptedException {
        Thread.sleep(500);  // the drains scheduled on the context have run and parked on the full queue
        System.gc();
        Thread.sleep(200);
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
