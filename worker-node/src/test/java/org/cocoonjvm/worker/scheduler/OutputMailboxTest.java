package org.cocoonjvm.worker.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Context;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class OutputMailboxTest {
    private final Vertx vertx = Vertx.vertx();
    private final Context context = vertx.getOrCreateContext();

    @AfterEach
    void closeVertx() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    /** Records what it gets, checking it is called on the mailbox's context only. */
    private final class Target implements EventTarget {
        final List<Delta> deltas = new ArrayList<>();
        final CompletableFuture<Final> fin = new CompletableFuture<>();
        final List<String> wrongThread = new ArrayList<>();
        volatile boolean full;
        volatile boolean gone;
        volatile Handler<Void> drain;
        volatile boolean stalled;
        /** What waits for a round trip the test answers; on the context only. */
        final List<Runnable> roundTrips = new ArrayList<>();

        private void check() {
            if (Vertx.currentContext() != context) {
                wrongThread.add(Thread.currentThread().getName());
            }
        }

        @Override
        public void delta(Delta delta) {
            check();
            deltas.add(delta);
        }

        @Override
        public void finish(Final f) {
            check();
            fin.complete(f);
        }

        @Override
        public boolean writeQueueFull() {
            check();
            return full;
        }

        @Override
        public void drainHandler(Handler<Void> handler) {
            check();
            drain = handler;
        }

        @Override
        public boolean gone() {
            return gone;
        }

        @Override
        public boolean stalledLately() {
            return stalled;
        }

        @Override
        public void afterRoundTrip(Runnable then) {
            check();
            roundTrips.add(then);
        }
    }

    /** What the meter hears of a Final that did not go out. */
    private static final class Delivered implements CreditGate.Meter {
        final CompletableFuture<long[]> counts = new CompletableFuture<>();

        @Override
        public void delivered(int promptTokens, long completionTokens) {
            counts.complete(new long[] {promptTokens, completionTokens});
        }

        @Override
        public void prompt(int tokens) {
        }

        @Override
        public void completion(int tokens) {
        }

        @Override
        public void ended() {
        }

        @Override
        public boolean paused() {
            return false;
        }

        @Override
        public String overdue() {
            return "";
        }
    }

    /**
     * A stream reset mid-answer: the gateway bills what went out before (its Accepted and deltas),
     * so the meter is told exactly that, and nothing after; a Final that goes out tells it nothing.
     */
    @Test
    void aTargetGoneBeforeTheFinal_tellsTheMeterWhatWentOutBefore() throws Exception {
        Target target = new Target();
        OutputMailbox mailbox = new OutputMailbox(context, target);
        Delivered meter = new Delivered();
        mailbox.accepted(5);
        mailbox.token(1, "a");
        mailbox.tokens(2, "bc");
        eventually(() -> target.deltas.stream().mapToInt(d -> d.getTokenIdsCount() + d.getTokensWithoutIds()).sum() == 3);
        target.gone = true;
        mailbox.token(3, "d");
        mailbox.finish(stop(), meter);

        assertThat(meter.counts.get(5, TimeUnit.SECONDS)).containsExactly(5, 3);

        Target open = new Target();
        OutputMailbox delivered = new OutputMailbox(context, open);
        Delivered unused = new Delivered();
        delivered.token(1, "a");
        delivered.finish(stop(), unused);
        open.fin.get(5, TimeUnit.SECONDS);
        assertThat(unused.counts).isNotDone();
    }

    /**
     * On a loop that stalled lately every drain waits for a round trip before it writes: the one
     * a token schedules, and the one a full write queue's drain handler starts (review W, W-2: only
     * a drain queued during the stall did, so one queued as the loop resumed wrote to a caller
     * that had given up, and its tokens were taken as delivered).
     */
    @Test
    void onALoopThatStalledLately_everyDrainWaitsForARoundTripBeforeItWrites() throws Exception {
        Target target = new Target();
        target.stalled = true;
        target.full = true;
        OutputMailbox mailbox = new OutputMailbox(context, target);

        mailbox.token(1, "a");
        eventually(() -> target.roundTrips.size() == 1);
        assertThat(target.drain).as("nothing looked at before the answer").isNull();
        context.runOnContext(v -> target.roundTrips.removeFirst().run());
        eventually(() -> target.drain != null);  // answered: the drain goes on, and finds the queue full

        context.runOnContext(v -> {
            target.full = false;
            target.drain.handle(null);
        });
        eventually(() -> target.roundTrips.size() == 1);
        eventually(() -> target.deltas.isEmpty());
        context.runOnContext(v -> target.roundTrips.removeFirst().run());
        eventually(() -> target.deltas.size() == 1);
        assertThat(target.wrongThread).isEmpty();
    }

    private void eventually(java.util.function.BooleanSupplier condition) throws Exception {
        CompletableFuture<Boolean> met = new CompletableFuture<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!met.isDone()) {
            context.runOnContext(v -> {
                if (condition.getAsBoolean()) {
                    met.complete(true);
                }
            });
            assertThat(System.nanoTime() - deadline).as("in time").isNegative();
            Thread.sleep(5);
        }
    }

    private static Final stop() {
        return Final.newBuilder().setFinishReason(FinishReason.FINISH_REASON_STOP).build();
    }

    @Test
    void tokens_areDeliveredInOrderOnTheContextThenTheFinal() throws Exception {
        Target target = new Target();
        OutputMailbox mailbox = new OutputMailbox(context, target);

        mailbox.token(7, "a");
        mailbox.token(8, "");
        mailbox.token(-1, "b"); // held-back text alone carries no token id
        mailbox.token(9, "c");
        mailbox.finish(stop(), CreditGate.Meter.FREE);
        Final fin = target.fin.get(5, TimeUnit.SECONDS);

        CompletableFuture<List<Delta>> deltas = new CompletableFuture<>();
        context.runOnContext(v -> deltas.complete(List.copyOf(target.deltas)));
        List<Delta> received = deltas.get(5, TimeUnit.SECONDS);
        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
        assertThat(received.stream().flatMap(d -> d.getTokenIdsList().stream()).toList()).containsExactly(7, 8, 9);
        assertThat(String.join("", received.stream().map(Delta::getText).toList())).isEqualTo("abc");
        assertThat(target.wrongThread).isEmpty();
    }

    @Test
    void fullWriteQueue_holdsTokensAndMergesThemIntoOneDeltaOnDrain() throws Exception {
        Target target = new Target();
        target.full = true;
        OutputMailbox mailbox = new OutputMailbox(context, target);

        mailbox.token(1, "one");
        mailbox.token(2, " two");
        mailbox.token(3, " three");
        mailbox.tokens(2, " four");  // a forwarder's: counted, without ids
        mailbox.tokens(1, "");
        mailbox.finish(stop(), CreditGate.Meter.FREE);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (target.drain == null) {
            assertThat(System.nanoTime() - deadline).as("drain handler registered in time").isNegative();
            Thread.sleep(1);
        }
        assertThat(target.fin).isNotDone();

        CompletableFuture<Integer> deltasWhileFull = new CompletableFuture<>();
        context.runOnContext(v -> {
            deltasWhileFull.complete(target.deltas.size());
            target.full = false;
            target.drain.handle(null);
        });
        target.fin.get(5, TimeUnit.SECONDS);
        assertThat(deltasWhileFull.get(5, TimeUnit.SECONDS)).as("deltas delivered while the queue was full").isZero();

        CompletableFuture<List<Delta>> deltas = new CompletableFuture<>();
        context.runOnContext(v -> deltas.complete(List.copyOf(target.deltas)));
        List<Delta> received = deltas.get(5, TimeUnit.SECONDS);
        assertThat(received).hasSize(1);
        assertThat(received.getFirst().getTokenIdsList()).containsExactly(1, 2, 3);
        assertThat(received.getFirst().getTokensWithoutIds()).isEqualTo(3);
        assertThat(received.getFirst().getText()).isEqualTo("one two three four");
        assertThat(target.wrongThread).isEmpty();
    }

    @Test
    void longBacklog_isMergedIntoDeltasEachUnderTheBound() throws Exception {
        Target target = new Target();
        target.full = true;
        OutputMailbox mailbox = new OutputMailbox(context, target);
        int tokens = 20_000;  // "word " each: about 300 KiB merged, past what a gateway reads in one message

        for (int i = 0; i < tokens; i++) {
            mailbox.token(i, "word ");
        }
        mailbox.finish(stop(), CreditGate.Meter.FREE);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (target.drain == null) {
            assertThat(System.nanoTime() - deadline).as("drain handler registered in time").isNegative();
            Thread.sleep(1);
        }
        context.runOnContext(v -> {
            target.full = false;
            target.drain.handle(null);
        });
        target.fin.get(5, TimeUnit.SECONDS);

        CompletableFuture<List<Delta>> deltas = new CompletableFuture<>();
        context.runOnContext(v -> deltas.complete(List.copyOf(target.deltas)));
        List<Delta> received = deltas.get(5, TimeUnit.SECONDS);
        assertThat(received).hasSizeGreaterThan(1);
        assertThat(received).allSatisfy(d -> assertThat(d.getSerializedSize()).isLessThanOrEqualTo(OutputMailbox.MAX_DELTA_BYTES));
        assertThat(received.stream().mapToInt(Delta::getTokenIdsCount).sum()).isEqualTo(tokens);
        assertThat(received.stream().flatMap(d -> d.getTokenIdsList().stream()).toList())
                .isEqualTo(IntStream.range(0, tokens).boxed().toList());
        assertThat(String.join("", received.stream().map(Delta::getText).toList())).isEqualTo("word ".repeat(tokens));
    }
}
