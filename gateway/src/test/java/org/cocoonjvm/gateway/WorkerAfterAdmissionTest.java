package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.engine.Tokenizer;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.GenerationException;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.OutputMailbox;
import org.cocoonjvm.worker.scheduler.Scheduler;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A request without max_tokens is admitted while the model's only worker has a context of 64
 * tokens: its hold and usage bound are made of 64. That worker answers "busy", and the retry goes
 * to a worker that registered meanwhile with a context of 4096 (review Y, Y-4). Prices: 2 nanoTON
 * a token to the client, held at the highest coefficient (4.0x), 1 to the worker.
 */
class WorkerAfterAdmissionTest {
    private TestNetwork net;
    private BusyOnceReleased first;

    @BeforeEach
    void start() {
        net = new TestNetwork();
        net.addWorker((vertx, credit) -> first = new BusyOnceReleased(new Scheduler(new SyntheticEngine(1000, 4, 64),
                SchedulerOptions.DEFAULTS, credit)), WorkerPaymentOptions.IN_MEMORY);
    }

    @AfterEach
    void stop() {
        first.released.complete(null);
        net.close();
    }

    /** Sends a chat without max_tokens, and once worker-1 has it, registers worker-2 replying {@code words} words, then lets worker-1 refuse. */
    private TestNetwork.Reply servedByAWorkerThatCameLater(int words) throws Exception {
        Future<TestNetwork.Reply> reply = net.reply(new RequestOptions().setMethod(HttpMethod.POST).setURI("/v1/chat/completions")
                .putHeader("Authorization", "Bearer " + API_KEY), chat("synthetic", false, ""));
        first.submitted.get(10, TimeUnit.SECONDS);
        net.addWorker(new SyntheticEngine(1000, 4, 4096, words), SchedulerOptions.DEFAULTS, 2_000);
        first.released.complete(null);
        return await(reply);
    }

    /** Before, its bound stayed the 64 of admission: the reply was cut there, an upstream error, and the worker counted a failure. */
    @Test
    void aReplyLongerThanTheContextAtAdmission_isServedInFull_whenTheHoldCoversIt() throws Exception {
        TestNetwork.Reply reply = servedByAWorkerThatCameLater(100);

        assertThat(reply.status()).as(reply.body()).isEqualTo(200);
        assertThat(reply.json().getJsonObject("usage").getLong("completion_tokens")).isEqualTo(101);
        assertThat(reply.json().getJsonArray("choices").getJsonObject(0).getString("finish_reason")).isEqualTo("stop");
        assertBilledAsTold(reply.json().getJsonObject("usage").getLong("total_cost"));
        assertThat(net.gateway.registry().all()).allSatisfy(worker -> assertThat(worker.failures()).isZero());
    }

    /**
     * The hold (89 tokens: 64 and the prompt's 25 bytes and template token, at 4.0x and 2 nanoTON:
     * 712 nanoTON) covers 259 completion tokens beside the prompt's bound of 97: a reply of 400 is
     * cut off there, and what is billed stays within the hold.
     */
    @Test
    void theWiderBound_isNoWiderThanTheHoldCovers() throws Exception {
        TestNetwork.Reply reply = servedByAWorkerThatCameLater(400);

        assertThat(reply.status()).as(reply.body()).isEqualTo(502);
        assertThat(reply.json().getJsonObject("error").getString("message")).contains("more tokens than the request allows (259)");
        long cost = reply.json().getJsonObject("usage").getLong("total_cost");
        assertThat(cost).isLessThanOrEqualTo(712);
        assertBilledAsTold(cost);
    }

    private void assertBilledAsTold(long told) {
        eventually("every request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).as("charged what the client was told").isEqualTo(told);
    }

    /** A worker of a 64-token context that answers its first request "busy", once the test lets it. */
    private static final class BusyOnceReleased implements Generator {
        private final Scheduler scheduler;
        final CompletableFuture<Void> submitted = new CompletableFuture<>();
        final CompletableFuture<Void> released = new CompletableFuture<>();

        BusyOnceReleased(Scheduler scheduler) {
            this.scheduler = scheduler;
        }

        @Override
        public Runnable submit(GenerateRequest request, OutputMailbox output) {
            if (submitted.complete(null)) {
                released.join();  // on the worker's submitting thread, as a forwarder waits for its upstream
                throw new GenerationException(GenerationException.Reason.OVERLOADED, "busy, as the test asked");
            }
            return scheduler.submit(request, output);
        }

        @Override
        public ModelInfo model() {
            return scheduler.model();
        }

        @Override
        public Tokenizer.ChatOverhead chatOverhead() {
            return scheduler.chatOverhead();
        }

        @Override
        public String engineKind() {
            return scheduler.engineKind();
        }

        @Override
        public int capacity() {
            return scheduler.capacity();
        }

        @Override
        public WorkerLoad load() {
            return scheduler.load();
        }

        @Override
        public Generator start() {
            scheduler.start();
            return this;
        }

        @Override
        public CompletionStage<Throwable> failure() {
            return scheduler.failure();
        }

        @Override
        public CompletableFuture<Void> shutdown(long graceMillis) {
            return scheduler.shutdown(graceMillis);
        }
    }
}
