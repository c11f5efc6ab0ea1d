package org.cocoonjvm.gateway;

import io.vertx.core.Context;
import io.vertx.core.Handler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.Tokenizer;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.EventTarget;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.OutputMailbox;
import org.cocoonjvm.worker.scheduler.Scheduler;

/**
 * A modified worker's generator, as a GPU owner could build one on a gateway without attestation
 * (audit X): a real scheduler generates, and what it reports on the way out is what the test sets.
 */
final class LyingGenerator implements Generator {
    private final Scheduler honest;
    private final Context context;
    /** Added to the prompt the worker reports, in Accepted and in its Final. */
    volatile int extraPrompt;
    /** Added to the completion its Final reports. */
    volatile int extraCompletion;
    /** Sent as one delta of this many tokens without text before the Final, which counts them too. */
    volatile int phantomTokens;
    /** When not negative: the phantom delta goes out after this many real ones instead, and the reply streams on. */
    volatile int phantomAfterDeltas = -1;
    /** When positive, every request fails at once, its Final claiming this many completion tokens. */
    volatile int failClaimingTokens;

    LyingGenerator(Scheduler honest, Context context) {
        this.honest = honest;
        this.context = context;
    }

    @Override
    public Runnable submit(GenerateRequest request, OutputMailbox output) {
        if (failClaimingTokens > 0) {
            output.finish(Final.newBuilder().setFinishReason(FinishReason.FINISH_REASON_ERROR).setError("it went wrong")
                    .setUsage(Usage.newBuilder().setPromptTokens(2).setCompletionTokens(failClaimingTokens)).build(),
                    CreditGate.Meter.FREE);
            return () -> { };
        }
        return honest.submit(request, new OutputMailbox(context, new Inflating(output)));
    }

    /** Passes the honest scheduler's output on, inflated. */
    private final class Inflating implements EventTarget {
        private final OutputMailbox out;
        private int deltas;

        Inflating(OutputMailbox out) {
            this.out = out;
        }

        @Override
        public void accepted(int promptTokens) {
            out.accepted(promptTokens + extraPrompt);
        }

        @Override
        public void delta(Delta delta) {
            if (deltas++ == phantomAfterDeltas) {
                out.tokens(phantomTokens, "");
            }
            out.tokens(delta.getTokenIdsCount() + delta.getTokensWithoutIds(), delta.getText());
        }

        @Override
        public void finish(Final fin) {
            if (phantomTokens > 0 && phantomAfterDeltas < 0) {
                out.tokens(phantomTokens, "");
            }
            Usage usage = fin.getUsage();
            out.finish(fin.toBuilder().setUsage(usage.toBuilder().setPromptTokens(usage.getPromptTokens() + extraPrompt)
                    .setCompletionTokens(usage.getCompletionTokens() + extraCompletion + phantomTokens)).build(), CreditGate.Meter.FREE);
        }

        @Override
        public boolean writeQueueFull() {
            return false;
        }

        @Override
        public void drainHandler(Handler<Void> handler) {
        }
    }

    @Override
    public ModelInfo model() {
        return honest.model();
    }

    @Override
    public Tokenizer.ChatOverhead chatOverhead() {
        return honest.chatOverhead();
    }

    @Override
    public String engineKind() {
        return honest.engineKind();
    }

    @Override
    public int capacity() {
        return honest.capacity();
    }

    @Override
    public WorkerLoad load() {
        return honest.load();
    }

    @Override
    public Generator start() {
        honest.start();
        return this;
    }

    @Override
    public CompletionStage<Throwable> failure() {
        return honest.failure();
    }

    @Override
    public CompletableFuture<Void> shutdown(long graceMillis) {
        return honest.shutdown(graceMillis);
    }
}
