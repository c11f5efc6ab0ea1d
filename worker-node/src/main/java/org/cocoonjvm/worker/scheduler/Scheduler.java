package org.cocoonjvm.worker.scheduler;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.Slot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching over one {@link Engine}. A single platform thread that this class owns runs
 * {@link #step()} in a loop; it is the only thread that touches the engine and the running
 * sequences. Other threads talk to it through the bounded {@link #waiting} queue and each
 * sequence's cancel flag, so nothing on the request path takes a lock or waits.
 */
public final class Scheduler implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Scheduler.class);

    private final Engine engine;
    private final SchedulerOptions options;
    private final BlockingQueue<Sequence> waiting;
    private final List<Sequence> running = new ArrayList<>();
    private final AtomicLong nextId = new AtomicLong(1);
    private final Thread thread;
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    /** Written by the engine thread only; read by status calls. */
    private volatile int runningCount;
    private volatile long tokensGenerated;
    private volatile boolean accepting = true;
    private volatile long drainDeadlineNanos = Long.MAX_VALUE;

    public Scheduler(Engine engine, SchedulerOptions options) {
        this.engine = engine;
        this.options = options;
        this.waiting = new ArrayBlockingQueue<>(options.maxWaiting());
        this.thread = Thread.ofPlatform().name("cocoon-engine").daemon(true).unstarted(this::loop);
    }

    public Scheduler start() {
        thread.start();
        return this;
    }

    public ModelInfo model() {
        return engine.model();
    }

    public String engineKind() {
        return engine.kind();
    }

    public int capacity() {
        return engine.maxBatch();
    }

    public WorkerLoad load() {
        return WorkerLoad.newBuilder().setRunning(runningCount).setWaiting(waiting.size())
                .setCapacity(engine.maxBatch()).setTokensGenerated(tokensGenerated).build();
    }

    /**
     * Tokenizes and queues a request. Tokenization costs real time for long prompts, so callers
     * run this off the event loop. Never blocks: a full queue is an {@code OVERLOADED} failure.
     *
     * @return a handle whose {@code cancel} stops the sequence at the next step
     */
    public Runnable submit(GenerateRequest request, OutputMailbox output) {
        if (!accepting) {
            throw new GenerationException(GenerationException.Reason.SHUTTING_DOWN, "The worker is shutting down.");
        }
        ModelInfo model = engine.model();
        if (!request.getModel().equals(model.name()) && !request.getModel().equals(model.id())) {
            throw new GenerationException(GenerationException.Reason.MODEL_NOT_FOUND,
                    "This worker serves '" + model.name() + "', not '" + request.getModel() + "'.");
        }
        int[] prompt = switch (request.getInputCase()) {
            case CHAT -> engine.tokenizer().encodeChat(request.getChat().getMessagesList());
            case PROMPT -> engine.tokenizer().encode(request.getPrompt());
            case INPUT_NOT_SET -> throw new GenerationException(GenerationException.Reason.INVALID_ARGUMENT,
                    "The request has neither chat messages nor a prompt.");
        };
        if (prompt.length == 0) {
            throw new GenerationException(GenerationException.Reason.INVALID_ARGUMENT, "The prompt is empty.");
        }
        if (prompt.length >= model.maxContext()) {
            throw new GenerationException(GenerationException.Reason.INVALID_ARGUMENT, "The prompt has "
                    + prompt.length + " tokens; the model's context window is " + model.maxContext() + ".");
        }
        Sequence sequence = new Sequence(nextId.getAndIncrement(), request, prompt, engine.tokenizer(),
                model.maxContext(), output);
        if (!waiting.offer(sequence)) {
            throw new GenerationException(GenerationException.Reason.OVERLOADED,
                    "The worker's queue is full (" + options.maxWaiting() + " waiting).");
        }
        if (!accepting && waiting.remove(sequence)) {
            // Raced with shutdown: the engine thread may already have taken its last look at the
            // queue (it does so before closing the engine and completing `stopped`), so it might
            // never answer. If the remove fails, the engine thread took the sequence and answers it.
            throw new GenerationException(GenerationException.Reason.SHUTTING_DOWN, "The worker is shutting down.");
        }
        return sequence::cancel;
    }

    private void loop() {
        try {
            while (!Thread.currentThread().isInterrupted() && !(drained() || pastDrainDeadline())) {
                step();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            log.error("engine step failed; failing every sequence", e);
        } finally {
            abortAll("The worker stopped.");
            engine.close();
            stopped.complete(null);
        }
    }

    /** One iteration of continuous batching. */
    void step() throws InterruptedException {
        // 1. Cancelled sequences leave first, so their slots are free this step.
        running.removeIf(this::retireIfCancelled);
        // 2. Admit waiting sequences into free slots; sleep briefly when there is nothing to do.
        Sequence first = running.isEmpty() ? waiting.poll(options.idlePollMillis(), TimeUnit.MILLISECONDS) : null;
        if (first != null && !retireIfCancelled(first)) {
            running.add(first);
        }
        for (Sequence s; running.size() < engine.maxBatch() && (s = waiting.poll()) != null; ) {
            if (!retireIfCancelled(s)) {
                running.add(s);
            }
        }
        runningCount = running.size();
        if (running.isEmpty()) {
            return;
        }
        // 3. One engine call for every running sequence: prefill chunks and decode tokens together.
        List<Slot> batch = new ArrayList<>(running.size());
        for (Sequence s : running) {
            batch.add(s.nextSlot(options.prefillChunk()));
        }
        int[] next = new int[batch.size()];
        engine.step(batch, next);
        // 4. Stream each sequence's token; finished ones free their KV cache.
        int sampled = 0;
        for (int i = 0; i < next.length; i++) {
            Sequence s = running.get(i);
            s.accept(next[i]);
            sampled += next[i] == Engine.NO_TOKEN ? 0 : 1;
            if (s.finished()) {
                engine.release(s.id);
            }
        }
        tokensGenerated += sampled;
        running.removeIf(Sequence::finished);
        runningCount = running.size();
    }

    private boolean retireIfCancelled(Sequence s) {
        if (!s.cancelled()) {
            return false;
        }
        s.abort(FinishReason.FINISH_REASON_CANCELLED, "");
        engine.release(s.id);
        return true;
    }

    private boolean drained() {
        return !accepting && running.isEmpty() && waiting.isEmpty();
    }

    private boolean pastDrainDeadline() {
        return System.nanoTime() - drainDeadlineNanos > 0;
    }

    private void abortAll(String reason) {
        for (Sequence s : running) {
            s.abort(FinishReason.FINISH_REASON_ERROR, reason);
        }
        running.clear();
        for (Sequence s; (s = waiting.poll()) != null; ) {
            s.abort(FinishReason.FINISH_REASON_ERROR, reason);
        }
        runningCount = 0;
    }

    /**
     * Stops taking requests, lets running ones finish for up to {@code graceMillis}, then fails
     * what is left and closes the engine.
     */
    public CompletableFuture<Void> shutdown(long graceMillis) {
        accepting = false;
        drainDeadlineNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMillis);
        if (!thread.isAlive() && !stopped.isDone()) {
            stopped.complete(null);
        }
        return stopped;
    }

    @Override
    public void close() {
        shutdown(0).join();
    }
}
