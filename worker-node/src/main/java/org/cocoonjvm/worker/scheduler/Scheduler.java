package org.cocoonjvm.worker.scheduler;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.Priority;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.Tokenizer;
import org.cocoonjvm.worker.engine.NoChatTemplate;
import org.cocoonjvm.worker.engine.PromptRejected;
import org.cocoonjvm.worker.engine.Slot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching over one {@link Engine}. A single platform thread that this class owns runs
 * {@link #step()} in a loop; it is the only thread that touches the engine and the running
 * sequences. Other threads talk to it through two bounded waiting queues (interactive and flex) and each
 * sequence's cancel flag, so nothing on the request path takes a lock or waits.
 */
public final class Scheduler implements Generator, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Scheduler.class);

    private final Engine engine;
    private final SchedulerOptions options;
    private final CreditGate credit;
    /** The engine's model with the context one sequence can have here: no more than the KV cache holds. */
    private final ModelInfo model;
    /** Admitted before {@link #flex}: interactive traffic is never stuck behind a bulk burst. */
    private final BlockingQueue<Sequence> interactive;
    private final BlockingQueue<Sequence> flex;
    private final List<Sequence> running = new ArrayList<>();
    /** KV blocks held by running sequences' reservations; engine thread only. */
    private int kvBlocksReserved;
    private final AtomicLong nextId = new AtomicLong(1);
    private final Thread thread;
    private final Tokenizer.ChatOverhead chatOverhead;
    /** Until the loop ends; guarded by {@link #interruptLock}, so no grace-period interrupt lands after it. */
    private boolean looping = true;
    private final Object interruptLock = new Object();
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    /** Written by the engine thread only; read by status calls. */
    private volatile int runningCount;
    private volatile long tokensGenerated;
    /** Prompt tokens handed to the engine in prefill chunks; written by the engine thread only. */
    private volatile long promptTokens;
    private volatile boolean accepting = true;
    /** Set with {@link #accepting} = false; only meaningful once shutdown was asked for. */
    private volatile long drainDeadlineNanos;
    /**
     * Completed with the exception an engine step threw. The engine is closed then, so the worker
     * refuses every later request as unavailable rather than answering each with an internal error.
     */
    private final CompletableFuture<Throwable> failure = new CompletableFuture<>();

    public Scheduler(Engine engine, SchedulerOptions options) {
        this(engine, options, CreditGate.NONE);
    }

    /** @param credit pauses the sequences of a channel that is behind on its payments */
    public Scheduler(Engine engine, SchedulerOptions options, CreditGate credit) {
        this.engine = engine;
        this.options = options;
        this.credit = credit;
        Engine.KvBudget kv = engine.kvBudget();
        long kvTokens = (long) kv.blocks() * kv.blockTokens();
        ModelInfo full = engine.model();
        this.model = kvTokens >= full.maxContext() ? full : new ModelInfo(full.name(), full.hash(), (int) kvTokens);
        this.interactive = new ArrayBlockingQueue<>(options.maxWaiting());
        this.flex = new ArrayBlockingQueue<>(options.maxWaiting());
        this.thread = Thread.ofPlatform().name("cocoon-engine").daemon(true).unstarted(this::loop);
        this.chatOverhead = engine.tokenizer().chatOverhead();
        credit.onPayment(() -> LockSupport.unpark(thread));
    }

    @Override
    public Scheduler start() {
        try {
            engine.tokenizer().checkChat();
        } catch (NoChatTemplate e) {
            log.warn("model {} has no chat template: it serves plain prompts (/v1/completions), and chat completions are "
                    + "refused as for a model that is not a chat model (400 invalid_request_error, param model)",
                    engine.model().name());
        }
        if (model.maxContext() < engine.model().maxContext()) {
            log.warn("the KV cache holds {} tokens, less than the model's context of {}: this worker serves and advertises a "
                    + "context of {} (a larger --kv-tokens serves the whole context)", model.maxContext(),
                    engine.model().maxContext(), model.maxContext());
        }
        thread.start();
        return this;
    }

    @Override
    public CompletableFuture<Throwable> failure() {
        return failure;
    }

    /** An engine failure in words for clients and /status: its message, not the exception's class. */
    public static String describe(Throwable failure) {
        String message = failure.getMessage();
        return message == null || message.isBlank() ? failure.getClass().getSimpleName() : message;
    }

    @Override
    public Tokenizer.ChatOverhead chatOverhead() {
        return chatOverhead;
    }

    /** The engine's model, its context limited to what the KV cache holds: what clients and gateways may send. */
    @Override
    public ModelInfo model() {
        return model;
    }

    @Override
    public String engineKind() {
        return engine.kind();
    }

    @Override
    public int capacity() {
        return engine.maxBatch();
    }

    @Override
    public WorkerLoad load() {
        return WorkerLoad.newBuilder().setRunning(runningCount).setWaiting(interactive.size() + flex.size())
                .setCapacity(engine.maxBatch()).setTokensGenerated(tokensGenerated).setPromptTokens(promptTokens).build();
    }

    /**
     * Tokenizes and queues a request. Tokenization costs real time for long prompts, so callers
     * run this off the event loop. Never blocks: a full queue is an {@code OVERLOADED} failure.
     *
     * @return a handle whose {@code cancel} stops the sequence at the next step
     */
    @Override
    public Runnable submit(GenerateRequest request, OutputMailbox output) {
        if (!accepting || failure.isDone()) {
            throw notAccepting();
        }
        if (!request.getModel().equals(model.name()) && !request.getModel().equals(model.id())) {
            throw new GenerationException(GenerationException.Reason.MODEL_NOT_FOUND,
                    "This worker serves '" + model.name() + "', not '" + request.getModel() + "'.");
        }
        int[] prompt = switch (request.getInputCase()) {
            case CHAT -> chatPrompt(request);
            case PROMPT -> engine.tokenizer().encode(request.getPrompt());
            case INPUT_NOT_SET -> throw new GenerationException(GenerationException.Reason.INVALID_ARGUMENT,
                    "The request has neither chat messages nor a prompt.");
        };
        if (prompt.length == 0) {
            throw new GenerationException(GenerationException.Reason.INVALID_ARGUMENT, "The prompt is empty.");
        }
        // OpenAI names the prompt's field for either, whichever is too long.
        String promptParam = request.hasChat() ? "messages" : "prompt";
        if (request.getMaxTokens() > 0 && (long) prompt.length + request.getMaxTokens() > model.maxContext()) {
            throw new GenerationException(GenerationException.Reason.CONTEXT_LENGTH_EXCEEDED, promptParam,
                    contextWindow() + "; the prompt has " + prompt.length
                            + " and the request allows " + request.getMaxTokens() + " completion tokens (max_tokens or "
                            + "max_completion_tokens). Lower that or shorten the prompt.");
        }
        if (prompt.length >= model.maxContext()) {
            throw new GenerationException(GenerationException.Reason.CONTEXT_LENGTH_EXCEEDED, promptParam,
                    contextWindow() + "; the prompt has " + prompt.length + " tokens.");
        }
        CreditGate.Meter meter = credit.meter(request);
        Sequence sequence = new Sequence(nextId.getAndIncrement(), request, prompt, engine.tokenizer(),
                model.maxContext(), output, meter);
        BlockingQueue<Sequence> queue = request.getPriority() == Priority.PRIORITY_FLEX ? flex : interactive;
        if (!queue.offer(sequence)) {
            meter.ended();  // metered nothing: its channel counts it as running no longer
            throw new GenerationException(GenerationException.Reason.OVERLOADED,
                    "The worker's queue is full (" + options.maxWaiting() + " waiting).");
        }
        LockSupport.unpark(thread);  // an idle engine thread parks until work arrives
        if ((!accepting || failure.isDone()) && queue.remove(sequence)) {
            // Raced with shutdown or an engine failure: the engine thread may already have taken its
            // last look at the queue (it does so before closing the engine and completing `stopped`),
            // so it might never answer. If the remove fails, the engine thread took the sequence and answers it.
            meter.ended();
            throw notAccepting();
        }
        return sequence::cancel;
    }

    private String contextWindow() {
        return model.maxContext() == engine.model().maxContext()
                ? "The model's context window is " + model.maxContext() + " tokens"
                : "This worker's context window is " + model.maxContext() + " tokens (its KV cache holds "
                        + model.maxContext() + " of the model's " + engine.model().maxContext() + ")";
    }

    private GenerationException notAccepting() {
        if (failure.isDone()) {
            return new GenerationException(GenerationException.Reason.ENGINE_FAILED, "This worker's engine failed ("
                    + describe(failure.join()) + ") and serves no more requests; the worker must be restarted.");
        }
        return new GenerationException(GenerationException.Reason.SHUTTING_DOWN, "The worker is shutting down.");
    }

    /** A refused chat is the client's error (400, not retried elsewhere), never the worker's. */
    private int[] chatPrompt(GenerateRequest request) {
        try {
            return engine.tokenizer().encodeChat(request.getChat().getMessagesList());
        } catch (PromptRejected e) {
            throw new GenerationException(GenerationException.Reason.INVALID_ARGUMENT, "messages", e.getMessage());
        } catch (NoChatTemplate e) {
            throw new GenerationException(GenerationException.Reason.NO_CHAT_TEMPLATE, "model", e.getMessage());
        }
    }

    private void loop() {
        try {
            while (!Thread.currentThread().isInterrupted() && !(drained() || pastDrainDeadline())) {
                step();
            }
        } catch (RuntimeException | Error e) {
            log.error("engine step failed: the engine is closed, every running sequence fails and the worker refuses "
                    + "new requests until it is restarted", e);
            failure.complete(e);
        } finally {
            synchronized (interruptLock) {
                looping = false;
            }
            Thread.interrupted();  // a grace-period interrupt is spent; closing the engine must not see it
            if (failure.isDone()) {
                abortAll(notAccepting().getMessage(), false);
            } else {
                abortAll(STOPPED_BEFORE_THE_END, true);
            }
            engine.close();
            stopped.complete(null);
        }
    }

    /** One iteration of continuous batching. */
    void step() {
        // 1. Cancelled sequences leave first, so their slots and KV blocks are free this step; those
        //    still waiting too, at once: retired only once admitted, a request whose client left
        //    would wait for a slot (seconds with a full batch) before its Final frees the gateway's
        //    hold on its key's concurrency and balance (audit H, H-1).
        running.removeIf(this::retireIfCancelled);
        interactive.removeIf(this::retireIfCancelled);
        flex.removeIf(this::retireIfCancelled);
        // 2. Admit waiting sequences while batch slots and KV blocks allow; sleep briefly when idle.
        admit();
        runningCount = running.size();
        if (running.isEmpty()) {
            return;
        }
        // 3. One engine call: every decoding sequence's last token, then prefill chunks that fit;
        //    sequences whose channel is behind on payments sit out (and fail once overdue).
        List<Sequence> stepping = new ArrayList<>(running.size());
        long now = System.nanoTime();
        List<Slot> batch = plan(stepping, now);
        runningCount = running.size();
        if (batch.isEmpty()) {
            waitForPayment(now);
            return;
        }
        int[] next = new int[batch.size()];
        engine.step(batch, next);
        if (pastDrainDeadline()) {
            return;  // the grace period ran out during the step: fail the sequences rather than stream more
        }
        // 4. Stream each sequence's token; finished ones free their KV cache.
        int sampled = 0;
        for (int i = 0; i < next.length; i++) {
            Sequence s = stepping.get(i);
            s.accept(next[i]);
            sampled += next[i] == Engine.NO_TOKEN ? 0 : 1;
            if (s.finished()) {
                release(s);
            }
        }
        tokensGenerated += sampled;
        running.removeIf(Sequence::finished);
        runningCount = running.size();
    }

    /**
     * Moves waiting sequences into the batch while slots and KV blocks last: interactive before
     * flex, oldest first within each; a head that does not fit blocks its queue (FIFO, so a long
     * request is not overtaken forever by short ones).
     */
    private void admit() {
        if (running.isEmpty() && interactive.isEmpty() && flex.isEmpty()) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(options.idlePollMillis()));
        }
        Engine.KvBudget kv = engine.kvBudget();
        for (BlockingQueue<Sequence> queue : List.of(interactive, flex)) {
            for (Sequence s; running.size() < engine.maxBatch() && (s = queue.peek()) != null; ) {
                if (s.cancelled()) {
                    retireIfCancelled(queue.poll());
                } else if (kvBlocksReserved + kv.blocksFor(s.worstCaseTokens()) <= kv.blocks()) {
                    reserve(queue.poll(), kv);
                } else {
                    return;
                }
            }
        }
    }

    private void reserve(Sequence s, Engine.KvBudget kv) {
        s.kvBlocks = kv.blocksFor(s.worstCaseTokens());
        kvBlocksReserved += s.kvBlocks;
        running.add(s);
        s.admitted();
    }

    /**
     * This step's slots, decode tokens first, then prefill chunks within the step's token budget.
     * Sequences whose channel is over its credit window are left out; those left out longer than
     * the gate's limit fail with its {@code payment_overdue} error.
     */
    private List<Slot> plan(List<Sequence> stepping, long now) {
        running.removeIf(s -> failIfOverdue(s, now));
        List<Slot> batch = new ArrayList<>(running.size());
        int budget = engine.maxStepTokens();
        for (Sequence s : running) {
            if (s.pausedSinceNanos >= 0) {
                continue;
            }
            if (s.decoding()) {
                batch.add(s.nextSlot(1));
                stepping.add(s);
                budget--;
            }
        }
        for (Sequence s : running) {
            if (s.pausedSinceNanos < 0 && !s.decoding() && budget > 0) {
                Slot slot = s.nextSlot(Math.min(options.prefillChunk(), budget));
                batch.add(slot);
                stepping.add(s);
                budget -= slot.input().length;
                // Counted when planned: a step that throws fails the engine for good, and the few
                // tokens of its chunks are then no one's concern.
                promptTokens += slot.input().length;
            }
        }
        return batch;
    }

    /** Marks whether {@code s} waits for payment now; fails it once it has waited past the limit. */
    private boolean failIfOverdue(Sequence s, long now) {
        if (!s.meter.paused()) {
            s.pausedSinceNanos = -1;
            return false;
        }
        if (s.pausedSinceNanos < 0) {
            s.pausedSinceNanos = now;
            return false;
        }
        if (now - s.pausedSinceNanos < credit.pauseLimitNanos()) {
            return false;
        }
        s.fail(s.meter.overdue(), false);
        release(s);
        return true;
    }

    /**
     * Every running sequence waits for payment: sleep until a payment or a new request wakes the
     * thread, or the first of them becomes overdue, instead of spinning.
     */
    private void waitForPayment(long now) {
        long wait = TimeUnit.MILLISECONDS.toNanos(options.idlePollMillis());
        for (Sequence s : running) {
            if (s.pausedSinceNanos >= 0) {
                wait = Math.min(wait, credit.pauseLimitNanos() - (now - s.pausedSinceNanos));
            }
        }
        if (wait > 0) {
            LockSupport.parkNanos(wait);
        }
    }

    private void release(Sequence s) {
        engine.release(s.id);
        kvBlocksReserved -= s.kvBlocks;
        s.kvBlocks = 0;
    }

    private boolean retireIfCancelled(Sequence s) {
        if (!s.cancelled()) {
            return false;
        }
        s.retire();
        release(s);
        return true;
    }

    private boolean drained() {
        return !accepting && running.isEmpty() && interactive.isEmpty() && flex.isEmpty();
    }

    private boolean pastDrainDeadline() {
        return !accepting && System.nanoTime() - drainDeadlineNanos > 0;
    }

    /** @param workerStopping the worker's stop ends them (planned), not its engine's failure */
    private void abortAll(String reason, boolean workerStopping) {
        for (Sequence s : running) {
            s.fail(reason, workerStopping);
        }
        running.clear();
        for (Sequence s; (s = interactive.poll()) != null || (s = flex.poll()) != null; ) {
            s.fail(reason, workerStopping);
        }
        runningCount = 0;
    }

    /**
     * Stops taking requests, lets running ones finish for up to {@code graceMillis}, then fails
     * what is left and closes the engine.
     */
    @Override
    public CompletableFuture<Void> shutdown(long graceMillis) {
        drainDeadlineNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMillis);
        accepting = false;
        if (!thread.isAlive() && !stopped.isDone()) {
            stopped.complete(null);
        }
        // A step can outlast the grace (a synthetic engine at 0.001 tokens/s waits 1000 s per step):
        // once the grace is over, interrupt it, and engines that wait cut the wait short.
        CompletableFuture.delayedExecutor(graceMillis, TimeUnit.MILLISECONDS).execute(() -> {
            synchronized (interruptLock) {
                if (looping) {
                    thread.interrupt();
                }
            }
        });
        return stopped;
    }

    @Override
    public void close() {
        shutdown(0).join();
    }
}
