package org.cocoonjvm.worker.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.Slot;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.engine.Tokenizer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A request whose {@code submit} passed the "accepting" check just before shutdown must still be
 * answered: either refused, or given a Final. Gates in the engine pin the interleaving, so the
 * race is reproduced deterministically rather than by chance.
 */
class SchedulerShutdownRaceTest {
    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void closeVertx() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    /** The synthetic engine, with a tokenizer that can be held mid-submit and a close that can be held. */
    private static final class GatedEngine implements Engine {
        final SyntheticEngine delegate = new SyntheticEngine(2000, 4, 512);
        final CountDownLatch tokenizing = new CountDownLatch(1);
        final CountDownLatch releaseTokenizer = new CountDownLatch(1);
        final CountDownLatch closing = new CountDownLatch(1);
        final CountDownLatch releaseClose = new CountDownLatch(1);

        private final Tokenizer tokenizer = new Tokenizer() {
            /** The gate holds the request's tokenization, not the start's check of the chat template. */
            @Override
            public void checkChat() {
            }

            @Override
            public int[] encodeChat(List<ChatMessage> messages) {
                tokenizing.countDown();
                await(releaseTokenizer);
                return delegate.tokenizer().encodeChat(messages);
            }

            @Override
            public int[] encode(String text) {
                return delegate.tokenizer().encode(text);
            }

            @Override
            public Decoder newDecoder() {
                return delegate.tokenizer().newDecoder();
            }

            @Override
            public boolean isEndOfSequence(int token) {
                return delegate.tokenizer().isEndOfSequence(token);
            }
        };

        private static void await(CountDownLatch latch) {
            try {
                if (!latch.await(5, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("gate never opened");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        @Override
        public ModelInfo model() {
            return delegate.model();
        }

        @Override
        public String kind() {
            return delegate.kind();
        }

        @Override
        public int maxBatch() {
            return delegate.maxBatch();
        }

        @Override
        public Tokenizer tokenizer() {
            return tokenizer;
        }

        @Override
        public void step(List<Slot> slots, int[] next) {
            delegate.step(slots, next);
        }

        @Override
        public void release(long sequenceId) {
            delegate.release(sequenceId);
        }

        @Override
        public void close() {
            closing.countDown();
            await(releaseClose);
            delegate.close();
        }
    }

    @Test
    void submit_racingShutdownWhileEngineCloses_isRefusedOrAnsweredNeverStranded() throws Exception {
        GatedEngine engine = new GatedEngine();
        Scheduler scheduler = new Scheduler(engine, new SchedulerOptions(8, 512, 5)).start();
        CompletableFuture<Final> fin = new CompletableFuture<>();
        EventTarget target = new EventTarget() {
            @Override
            public void delta(Delta delta) {}

            @Override
            public void finish(Final f) {
                fin.complete(f);
            }

            @Override
            public boolean writeQueueFull() {
                return false;
            }

            @Override
            public void drainHandler(Handler<Void> handler) {}
        };
        GenerateRequest request = GenerateRequest.newBuilder().setModel(SyntheticEngine.MODEL_NAME)
                .setChat(ChatMessages.newBuilder().addMessages(ChatMessage.newBuilder().setRole("user").setContent("hi")))
                .setMaxTokens(2).build();

        // 1. The submit passes the "accepting" check and is held while tokenizing.
        CompletableFuture<Runnable> submitted = CompletableFuture.supplyAsync(
                () -> scheduler.submit(request, new OutputMailbox(vertx.getOrCreateContext(), target)));
        assertThat(engine.tokenizing.await(5, TimeUnit.SECONDS)).isTrue();
        // 2. Shutdown: the idle engine thread drains, aborts what is queued (nothing), and closes the engine.
        CompletableFuture<Void> stopped = scheduler.shutdown(5_000);
        assertThat(engine.closing.await(5, TimeUnit.SECONDS)).isTrue();
        // 3. The submit now queues its sequence, after the engine thread's last look at the queue.
        engine.releaseTokenizer.countDown();
        Throwable refused = null;
        try {
            submitted.get(5, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            refused = e.getCause();
        }
        engine.releaseClose.countDown();
        stopped.get(5, TimeUnit.SECONDS);

        if (refused != null) {
            assertThat(refused).isInstanceOf(GenerationException.class);
            assertThat(((GenerationException) refused).reason()).isEqualTo(GenerationException.Reason.SHUTTING_DOWN);
        } else {
            try {
                fin.get(5, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                throw new AssertionError("the request was accepted during shutdown but never answered", e);
            }
        }
    }
}
