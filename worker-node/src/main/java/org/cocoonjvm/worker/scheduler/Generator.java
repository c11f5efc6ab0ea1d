package org.cocoonjvm.worker.scheduler;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.Tokenizer;

/**
 * What a worker serves requests with: the {@link Scheduler} over an in-process engine, or a
 * forwarder to an OpenAI-compatible server beside the worker. The worker's endpoints see only this.
 */
public interface Generator {
    ModelInfo model();

    /** What the model's chat template adds around messages; NONE when this worker does not render it. */
    default Tokenizer.ChatOverhead chatOverhead() {
        return Tokenizer.ChatOverhead.NONE;
    }

    /** Shown in status and registration, e.g. {@code synthetic}, {@code native-cpu-avx2}, {@code forward}. */
    String engineKind();

    /** Sequences it runs at once; the gateway routes by in-flight requests per unit of capacity. */
    int capacity();

    WorkerLoad load();

    /** Starts its threads; returns itself for chaining. */
    Generator start();

    /**
     * Starts one generation whose events go to {@code output}. May block briefly (tokenization),
     * so callers run it off the event loop; never waits for capacity: refuses with
     * {@link GenerationException} instead.
     *
     * @return cancels the generation; safe to call at any time, more than once
     */
    Runnable submit(GenerateRequest request, OutputMailbox output);

    /**
     * Completes with the cause if the generator failed for good (its engine is closed and every
     * later request is refused); never completes while it can serve.
     */
    default CompletionStage<Throwable> failure() {
        return new CompletableFuture<>();
    }

    /**
     * Stops taking requests, lets running ones finish for up to {@code graceMillis}, then fails the
     * rest: their Final says {@link #STOPPED_BEFORE_THE_END} with {@code worker_stopping} set.
     */
    CompletableFuture<Void> shutdown(long graceMillis);

    /** The error of a generation the stop's grace cut short. */
    String STOPPED_BEFORE_THE_END = "The worker stopped before the generation finished.";
}
