package org.cocoonjvm.worker.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.grpc.common.GrpcStatus;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.SamplingParams;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The scheduler driving the real {@link SyntheticEngine} on its own thread, with output delivered
 * through {@link OutputMailbox} on a real Vert.x context.
 */
class SchedulerTest {
    private static final Duration DEADLINE = Duration.ofSeconds(5);
    /** The synthetic engine ends every reply with end-of-sequence after at least this many tokens. */
    private static final int SYNTHETIC_MIN_LENGTH = 24;
    private static final SchedulerOptions OPTIONS = new SchedulerOptions(64, 512, 5);

    private Vertx vertx;
    private final List<Scheduler> schedulers = new ArrayList<>();

    @BeforeEach
    void startVertx() {
        vertx = Vertx.vertx();
    }

    @AfterEach
    void stopAll() throws Exception {
        for (Scheduler s : schedulers) {
            s.shutdown(0).get(5, TimeUnit.SECONDS);
        }
        vertx.close().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    private Scheduler scheduler(double tokensPerSecond, int maxBatch, int maxContext, SchedulerOptions options) {
        Scheduler s = new Scheduler(new SyntheticEngine(tokensPerSecond, maxBatch, maxContext), options).start();
        schedulers.add(s);
        return s;
    }

    private Scheduler fastScheduler() {
        return scheduler(2000, 8, 512, OPTIONS);
    }

    private static GenerateRequest request(String prompt, long seed, int maxTokens, String... stops) {
        return GenerateRequest.newBuilder()
                .setRequestId("test")
                .setModel(SyntheticEngine.MODEL_NAME)
                .setChat(ChatMessages.newBuilder()
                        .addMessages(ChatMessage.newBuilder().setRole("system").setContent("you are a test"))
                        .addMessages(ChatMessage.newBuilder().setRole("user").setContent(prompt)))
                .setSampling(SamplingParams.newBuilder().setTemperature(1f).setSeed(seed))
                .setMaxTokens(maxTokens)
                .addAllStop(List.of(stops))
                .build();
    }

    /** Collects one sequence's output; called on the mailbox's context, read by the test thread. */
    static final class Recorder implements EventTarget {
        private final List<Integer> tokens = new ArrayList<>();
        private final StringBuilder text = new StringBuilder();
        private final CompletableFuture<Delta> firstDelta = new CompletableFuture<>();
        private final CompletableFuture<Final> fin = new CompletableFuture<>();
        private int deltas;
        private int callsAfterFinish;

        @Override
        public synchronized void delta(Delta delta) {
            if (fin.isDone()) {
                callsAfterFinish++;
            }
            deltas++;
            tokens.addAll(delta.getTokenIdsList());
            text.append(delta.getText());
            firstDelta.complete(delta);
        }

        @Override
        public synchronized void finish(Final f) {
            if (!fin.complete(f)) {
                callsAfterFinish++;
            }
        }

        @Override
        public boolean writeQueueFull() {
            return false;
        }

        @Override
        public void drainHandler(Handler<Void> handler) {}

        Final awaitFinal() throws Exception {
            Final f = fin.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
            synchronized (this) {
                assertThat(callsAfterFinish).as("calls after the final event").isZero();
            }
            return f;
        }

        void awaitFirstDelta() throws Exception {
            firstDelta.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        }

        synchronized List<Integer> tokens() {
            return List.copyOf(tokens);
        }

        synchronized String text() {
            return text.toString();
        }
    }

    private Recorder submit(Scheduler scheduler, GenerateRequest request) {
        Recorder recorder = new Recorder();
        scheduler.submit(request, new OutputMailbox(vertx.getOrCreateContext(), recorder));
        return recorder;
    }

    private Recorder run(Scheduler scheduler, GenerateRequest request) throws Exception {
        Recorder recorder = submit(scheduler, request);
        recorder.awaitFinal();
        return recorder;
    }

    private static void pollUntil(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(2);
        }
    }

    private static GenerationException refusal(Runnable submit) {
        GenerationException e = catchThrowableOfType(GenerationException.class, submit::run);
        assertThat(e).as("submit should be refused").isNotNull();
        return e;
    }

    @Test
    void generate_samePromptAndSeed_givesIdenticalTokensAloneAndInABatch() throws Exception {
        Scheduler scheduler = scheduler(250, 8, 512, OPTIONS);
        GenerateRequest a = request("what does the cocoon network do", 42, 0);
        List<Integer> alone = run(scheduler, a).tokens();

        // A long-running neighbour is mid-decode when the others arrive, so A's prefill shares
        // engine steps with other sequences' decode steps.
        Recorder neighbour = submit(scheduler, request("a completely different prompt", 1, 0));
        neighbour.awaitFirstDelta();
        Recorder other = submit(scheduler, request("yet another prompt entirely", 42, 0));
        Recorder batched = submit(scheduler, a);
        Recorder twin = submit(scheduler, a);

        assertThat(batched.awaitFinal().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
        twin.awaitFinal();
        other.awaitFinal();
        neighbour.awaitFinal();
        assertThat(alone).hasSizeGreaterThanOrEqualTo(SYNTHETIC_MIN_LENGTH);
        assertThat(batched.tokens()).isEqualTo(alone);
        assertThat(twin.tokens()).isEqualTo(alone);
        assertThat(other.tokens()).isNotEqualTo(alone);
        assertThat(neighbour.tokens()).isNotEqualTo(alone);
    }

    @Test
    void generate_differentSeed_givesDifferentTokens() throws Exception {
        Scheduler scheduler = fastScheduler();

        List<Integer> seed1 = run(scheduler, request("same prompt", 1, 0)).tokens();
        List<Integer> seed2 = run(scheduler, request("same prompt", 2, 0)).tokens();

        assertThat(seed1).isNotEqualTo(seed2);
    }

    @Test
    void generate_maxTokens_givesExactlyThatManyTokensAndLength() throws Exception {
        Scheduler scheduler = fastScheduler();

        Recorder recorder = run(scheduler, request("count to five", 7, 5));
        Final fin = recorder.awaitFinal();

        assertThat(recorder.tokens()).hasSize(5);
        assertThat(recorder.text().split(" ")).hasSize(5);
        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(fin.getUsage().getCompletionTokens()).isEqualTo(5);
        assertThat(fin.getError()).isEmpty();
    }

    @Test
    void generate_maxTokensOne_givesOneToken() throws Exception {
        Recorder recorder = run(fastScheduler(), request("just one", 7, 1));

        assertThat(recorder.tokens()).hasSize(1);
        assertThat(recorder.awaitFinal().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
    }

    @Test
    void generate_withoutMaxTokens_endsWithStopAtEndOfSequence() throws Exception {
        Recorder recorder = run(fastScheduler(), request("tell me everything", 3, 0));
        Final fin = recorder.awaitFinal();

        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
        assertThat(recorder.tokens()).hasSizeBetween(SYNTHETIC_MIN_LENGTH, 63).doesNotContain(0);
        // The end-of-sequence token is sampled (and counted) but never streamed.
        assertThat(fin.getUsage().getCompletionTokens()).isEqualTo(recorder.tokens().size() + 1);
        assertThat(recorder.text().split(" ")).hasSize(recorder.tokens().size());
    }

    @Test
    void generate_usagePromptTokens_equalsTheTokenizersCount() throws Exception {
        Scheduler scheduler = fastScheduler();
        GenerateRequest request = request("how many tokens are in this prompt", 9, 3);
        int expected = new SyntheticEngine(1, 1, 512).tokenizer().encodeChat(request.getChat().getMessagesList()).length;

        Final fin = run(scheduler, request).awaitFinal();

        assertThat(expected).isEqualTo(2 + 4 + 7); // two role markers, then the words of both messages
        assertThat(fin.getUsage().getPromptTokens()).isEqualTo(expected);
    }

    @Test
    void generate_rawPrompt_isAccepted() throws Exception {
        GenerateRequest request = GenerateRequest.newBuilder().setModel(SyntheticEngine.MODEL_NAME)
                .setPrompt("once upon a time").setMaxTokens(2).build();

        Final fin = run(fastScheduler(), request).awaitFinal();

        assertThat(fin.getUsage().getPromptTokens()).isEqualTo(4);
        assertThat(fin.getUsage().getCompletionTokens()).isEqualTo(2);
    }

    @Test
    void generate_fullContext_endsWithLength() throws Exception {
        Scheduler scheduler = scheduler(2000, 8, 16, OPTIONS);
        GenerateRequest request = request("six words in this prompt ok", 5, 0); // 2 markers + 4 + 6 words = 12 tokens

        Recorder recorder = run(scheduler, request);
        Final fin = recorder.awaitFinal();

        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(fin.getUsage().getPromptTokens()).isEqualTo(12);
        assertThat(fin.getUsage().getCompletionTokens()).isEqualTo(4);
        assertThat(recorder.tokens()).hasSize(4);
    }

    @Test
    void generate_stopString_endsWithStopAndExcludesIt() throws Exception {
        Scheduler scheduler = fastScheduler();
        String full = run(scheduler, request("where do the tokens go", 11, 0)).text();
        String[] words = full.split(" ");
        String stop = words[5];

        Recorder recorder = run(scheduler, request("where do the tokens go", 11, 0, stop));
        Final fin = recorder.awaitFinal();

        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
        assertThat(recorder.text()).isEqualTo(full.substring(0, full.indexOf(stop))).doesNotContain(stop);
        assertThat(fin.getUsage().getCompletionTokens()).isLessThan(words.length);
    }

    @Test
    void generate_stopStringSpanningTokens_isHeldBackAndExcluded() throws Exception {
        Scheduler scheduler = fastScheduler();
        String full = run(scheduler, request("stop across a token boundary", 13, 0)).text();
        int space = full.indexOf(' ', full.length() / 2);
        String stop = full.substring(space - 2, space + 3); // end of one word, the space, start of the next

        Recorder recorder = run(scheduler, request("stop across a token boundary", 13, 0, "never-appears", stop));
        Final fin = recorder.awaitFinal();

        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
        assertThat(recorder.text()).isEqualTo(full.substring(0, full.indexOf(stop)));
    }

    @Test
    void generate_stopStringThatNeverAppears_releasesHeldTextAtTheEnd() throws Exception {
        Scheduler scheduler = fastScheduler();
        String full = run(scheduler, request("nothing stops this", 17, 0)).text();
        String lastWord = full.substring(full.lastIndexOf(' ') + 1);
        // The reply ends with the stop's first characters: held back, then released by the end.
        String stop = lastWord + "\u0000never";

        Recorder recorder = run(scheduler, request("nothing stops this", 17, 0, stop));

        assertThat(recorder.awaitFinal().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
        assertThat(recorder.text()).isEqualTo(full);
    }

    @Test
    void cancel_runningSequence_endsCancelledWithinAFewStepsAndFreesTheSlot() throws Exception {
        Scheduler scheduler = scheduler(50, 4, 512, OPTIONS); // 20 ms a step: replies last at least 480 ms
        Recorder recorder = new Recorder();
        Runnable cancel = scheduler.submit(request("a long story please", 5, 0),
                new OutputMailbox(vertx.getOrCreateContext(), recorder));
        recorder.awaitFirstDelta();
        assertThat(scheduler.load().getRunning()).isEqualTo(1);

        cancel.run();
        long generatedAtCancel = scheduler.load().getTokensGenerated();
        Final fin = recorder.awaitFinal();

        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_CANCELLED);
        // At most the step in flight completes, then the next step retires the sequence.
        assertThat(fin.getUsage().getCompletionTokens()).isBetween((int) generatedAtCancel, (int) generatedAtCancel + 2);
        assertThat(fin.getUsage().getCompletionTokens()).isLessThan(SYNTHETIC_MIN_LENGTH);
        pollUntil("running drops to 0", () -> scheduler.load().getRunning() == 0);
        long afterCancel = scheduler.load().getTokensGenerated();
        assertThat(afterCancel).isEqualTo(fin.getUsage().getCompletionTokens());

        // The engine keeps stepping for new work only: the counter grows by exactly its tokens.
        Final next = run(scheduler, request("short one", 5, 2)).awaitFinal();
        pollUntil("running drops to 0 again", () -> scheduler.load().getRunning() == 0);
        assertThat(scheduler.load().getTokensGenerated()).isEqualTo(afterCancel + next.getUsage().getCompletionTokens());
    }

    /**
     * Cancelled while every slot is busy, a waiting sequence ends at the next step, not once a slot
     * frees: it used to wait for one (seconds behind long replies), and its gateway kept the
     * client's concurrency slot and balance held meanwhile (audit H, H-1).
     */
    @Test
    void cancel_waitingSequence_endsCancelledAtOnce_withoutGenerating_whileTheSlotStaysBusy() throws Exception {
        Scheduler scheduler = scheduler(50, 1, 512, OPTIONS);
        // 40 tokens at 50 a second: the only slot is busy for 800 ms.
        Recorder first = submit(scheduler, request("occupy the only slot", 1, 40));
        first.awaitFirstDelta();
        Recorder second = new Recorder();
        Runnable cancel = scheduler.submit(request("wait in line", 2, 0), new OutputMailbox(vertx.getOrCreateContext(), second));

        cancel.run();

        Final fin = second.awaitFinal();
        assertThat(first.fin).as("the first still runs").isNotDone();
        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_CANCELLED);
        assertThat(fin.getUsage().getCompletionTokens()).isZero();
        assertThat(second.tokens()).isEmpty();
        assertThat(first.awaitFinal().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
    }

    @Test
    void submit_fullWaitingQueue_isRefusedOverloaded() throws Exception {
        Scheduler scheduler = scheduler(10, 1, 512, new SchedulerOptions(1, 512, 5)); // 100 ms a step
        Runnable running = scheduler.submit(request("first", 1, 0), new OutputMailbox(vertx.getOrCreateContext(), new Recorder()));
        pollUntil("the first request runs", () -> scheduler.load().getRunning() == 1 && scheduler.load().getWaiting() == 0);
        Runnable waiting = scheduler.submit(request("second", 2, 0), new OutputMailbox(vertx.getOrCreateContext(), new Recorder()));
        assertThat(scheduler.load().getWaiting()).isEqualTo(1);

        GenerationException e = refusal(() ->
                scheduler.submit(request("third", 3, 0), new OutputMailbox(vertx.getOrCreateContext(), new Recorder())));

        assertThat(e.reason()).isEqualTo(GenerationException.Reason.OVERLOADED);
        assertThat(e.toApiException().kind().httpStatus).isEqualTo(503);
        running.run();
        waiting.run();
    }

    @Test
    void submit_unknownModel_isRefusedModelNotFound() {
        Scheduler scheduler = fastScheduler();
        GenerateRequest request = request("hi", 1, 1).toBuilder().setModel("gpt-4o").build();

        GenerationException e = refusal(() -> scheduler.submit(request, new OutputMailbox(vertx.getOrCreateContext(), new Recorder())));

        assertThat(e.reason()).isEqualTo(GenerationException.Reason.MODEL_NOT_FOUND);
        assertThat(e.getMessage()).contains("gpt-4o");
    }

    @Test
    void submit_modelByFullId_isAccepted() throws Exception {
        Scheduler scheduler = fastScheduler();
        GenerateRequest request = request("hi", 1, 1).toBuilder().setModel(scheduler.model().id()).build();

        assertThat(run(scheduler, request).awaitFinal().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
    }

    @Test
    void submit_promptLongerThanContext_isRefusedContextLengthExceeded_namingMessages() {
        Scheduler scheduler = scheduler(2000, 8, 16, OPTIONS);
        GenerateRequest request = request("one two three four five six seven eight nine ten eleven twelve thirteen fourteen", 1, 0);

        GenerationException e = refusal(() -> scheduler.submit(request, new OutputMailbox(vertx.getOrCreateContext(), new Recorder())));

        assertThat(e.reason()).isEqualTo(GenerationException.Reason.CONTEXT_LENGTH_EXCEEDED);
        assertThat(e.reason().grpcStatus).isEqualTo(GrpcStatus.INVALID_ARGUMENT);
        assertThat(e.toApiException().param()).isEqualTo("messages");
        assertThat(e.getMessage()).contains("16");
    }

    @Test
    void submit_noInput_isRefusedInvalidArgument() {
        Scheduler scheduler = fastScheduler();
        GenerateRequest request = GenerateRequest.newBuilder().setModel(SyntheticEngine.MODEL_NAME).build();

        GenerationException e = refusal(() -> scheduler.submit(request, new OutputMailbox(vertx.getOrCreateContext(), new Recorder())));

        assertThat(e.reason()).isEqualTo(GenerationException.Reason.INVALID_ARGUMENT);
    }

    @Test
    void submit_blankPrompt_isRefusedInvalidArgument() {
        Scheduler scheduler = fastScheduler();
        GenerateRequest request = GenerateRequest.newBuilder().setModel(SyntheticEngine.MODEL_NAME).setPrompt("   ").build();

        GenerationException e = refusal(() -> scheduler.submit(request, new OutputMailbox(vertx.getOrCreateContext(), new Recorder())));

        assertThat(e.reason()).isEqualTo(GenerationException.Reason.INVALID_ARGUMENT);
    }

    @Test
    void shutdown_withGrace_letsRunningSequencesFinishThenRefusesNewOnes() throws Exception {
        Scheduler scheduler = scheduler(200, 4, 512, OPTIONS); // 5 ms a step
        Recorder a = submit(scheduler, request("first of two", 1, 20));
        Recorder b = submit(scheduler, request("second of two", 2, 20));
        a.awaitFirstDelta();
        b.awaitFirstDelta();

        CompletableFuture<Void> stopped = scheduler.shutdown(5_000);
        GenerationException e = refusal(() ->
                scheduler.submit(request("too late", 3, 1), new OutputMailbox(vertx.getOrCreateContext(), new Recorder())));

        assertThat(e.reason()).isEqualTo(GenerationException.Reason.SHUTTING_DOWN);
        stopped.get(5, TimeUnit.SECONDS);
        for (Recorder r : List.of(a, b)) {
            Final fin = r.awaitFinal();
            assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
            assertThat(r.tokens()).hasSize(20);
        }
        assertThat(refusal(() -> scheduler.submit(request("still too late", 4, 1),
                new OutputMailbox(vertx.getOrCreateContext(), new Recorder()))).reason())
                .isEqualTo(GenerationException.Reason.SHUTTING_DOWN);
    }

    @Test
    void shutdown_graceElapsed_failsWhatIsStillRunning() throws Exception {
        Scheduler scheduler = scheduler(10, 4, 512, OPTIONS); // 100 ms a step: replies last seconds
        Recorder slow = submit(scheduler, request("this will not finish", 1, 0));
        slow.awaitFirstDelta();

        scheduler.shutdown(50).get(5, TimeUnit.SECONDS);

        Final fin = slow.awaitFinal();
        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_ERROR);
        assertThat(fin.getError()).isEqualTo(Generator.STOPPED_BEFORE_THE_END);
        assertThat(fin.getWorkerStopping()).as("a planned stop, which a gateway tells from a fault").isTrue();
        assertThat(scheduler.load().getRunning()).isZero();
    }

    @Test
    void shutdown_graceElapsedDuringAStepLongerThanIt_endsTheStepAndStops() throws Exception {
        Scheduler scheduler = scheduler(0.001, 4, 512, OPTIONS); // 1000 s a step, as the benchmark's idle streams
        Recorder idle = submit(scheduler, request("waits for a first token", 1, 0));
        for (long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5); scheduler.load().getRunning() == 0
                && System.nanoTime() < until; ) {
            Thread.sleep(5);
        }

        scheduler.shutdown(50).get(5, TimeUnit.SECONDS);

        assertThat(idle.awaitFinal().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_ERROR);
    }

    @Test
    void load_reportsCapacityAndIdleState() {
        Scheduler scheduler = scheduler(2000, 3, 512, OPTIONS);

        assertThat(scheduler.load().getCapacity()).isEqualTo(3);
        assertThat(scheduler.load().getRunning()).isZero();
        assertThat(scheduler.load().getWaiting()).isZero();
        assertThat(scheduler.load().getTokensGenerated()).isZero();
    }
}
