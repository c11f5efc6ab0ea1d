package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import ch.qos.logback.classic.Level;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.Scheduler;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A modified worker (a GPU owner's, on a gateway without attestation) reports more than it did:
 * the gateway bills the client and pays the worker no more than it relayed and the request's hold
 * allows (audit X). Real gateway and worker on loopback; the worker's scheduler is the real one,
 * its reports inflated by {@link LyingGenerator}. Prices: 2 nanoTON a token to the client, 1 to
 * the worker.
 */
class CheatingWorkerTest {
    private static final WorkerPaymentOptions PAYMENTS = new WorkerPaymentOptions(null, "", 1_000_000, 10_000);
    private TestNetwork net;

    @BeforeEach
    void start() {
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, 10_000_000_000L));
    }

    @AfterEach
    void stop() {
        net.close();
    }

    /** A worker replying ten words and its end of sequence (11 tokens), at 1000 a second, whose reports the test inflates. */
    private LyingGenerator liar(int maxBatch) {
        LyingGenerator[] made = new LyingGenerator[1];
        net.addWorker((vertx, credit) -> made[0] = new LyingGenerator(new Scheduler(new SyntheticEngine(1000, maxBatch, 4096, 10),
                SchedulerOptions.DEFAULTS, credit), vertx.getOrCreateContext()), PAYMENTS);
        return made[0];
    }

    @Test
    void aFinalClaimingMoreThanWasSent_isBilledAndPaidWhatWasRelayed() {
        LyingGenerator liar = liar(4);
        liar.extraPrompt = 500;
        liar.extraCompletion = 1000;

        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":16"));

        assertThat(reply.status()).as(reply.body()).isEqualTo(200);
        JsonObject usage = reply.json().getJsonObject("usage");
        assertThat(usage.getLong("completion_tokens")).as("the ten words it sent and its end of sequence").isEqualTo(11);
        assertThat(usage.getLong("prompt_tokens")).as("no more than the hold counted for the prompt").isLessThan(200);
        assertBilledAsTold(usage.getLong("total_cost"));
        assertWorkerPaidHalf("worker-1", usage.getLong("total_cost"));
    }

    /** Audit X, X-2: a delta of 100,000 tokens without text on a request of max_tokens 16. */
    @Test
    void tokensPastMaxTokens_failTheAttempt_andAreNeitherRelayedNorBilled() throws Exception {
        LyingGenerator liar = liar(4);
        liar.phantomTokens = 100_000;

        List<SseEvents.Event> events = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":16"))).ended.get(10, TimeUnit.SECONDS);

        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        JsonObject last = new JsonObject(events.get(events.size() - 2).data());
        assertThat(last.getJsonObject("error").getString("code")).isEqualTo("upstream_error");
        assertThat(last.getJsonObject("error").getString("message")).contains("more tokens than the request allows (16)");
        // The phantom delta may carry the last real tokens, merged: it is not relayed, nor are they.
        assertThat(last.getJsonObject("usage").getLong("completion_tokens")).isBetween(1L, 11L);
        assertBilledAsTold(last.getJsonObject("usage").getLong("total_cost"));
        assertWorkerPaidHalf("worker-1", last.getJsonObject("usage").getLong("total_cost"));
    }

    /**
     * Review Y, Y-3: the worker streams on after its delta past max_tokens; its call is reset at
     * once, and none of what follows reaches the client (it was relayed unbilled while the gateway
     * waited up to a minute for the Final of a worker that had broken the contract).
     */
    @Test
    void afterATokenCountPastMaxTokens_nothingMoreOfTheWorkerReachesTheClient() throws Exception {
        LyingGenerator[] made = new LyingGenerator[1];
        net.addWorker((vertx, credit) -> made[0] = new LyingGenerator(new Scheduler(new SyntheticEngine(50, 4, 4096, 10),
                SchedulerOptions.DEFAULTS, credit), vertx.getOrCreateContext()), PAYMENTS);
        made[0].phantomTokens = 100_000;
        made[0].phantomAfterDeltas = 2;

        List<SseEvents.Event> events = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":16"))).ended.get(10, TimeUnit.SECONDS);

        String content = events.stream().filter(e -> e.data().contains("\"content\""))
                .map(e -> new JsonObject(e.data()).getJsonArray("choices").getJsonObject(0).getJsonObject("delta").getString("content"))
                .reduce("", String::concat);
        assertThat(content.strip().split(" ")).as("the words before the phantom delta: " + content).hasSizeLessThanOrEqualTo(2);
        JsonObject last = new JsonObject(events.get(events.size() - 2).data());
        assertThat(last.getJsonObject("error").getString("code")).isEqualTo("upstream_error");
        assertBilledAsTold(last.getJsonObject("usage").getLong("total_cost"));
    }

    /** Audit X, X-3: 2e9 tokens claimed on a request that held funds for one: the account went 4 TON below zero. */
    @Test
    void aClaimFarPastTheHold_isBilledWithinIt() {
        LyingGenerator liar = liar(4);
        liar.extraCompletion = 2_000_000_000;

        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":1"));

        assertThat(reply.json().getJsonObject("usage").getLong("completion_tokens")).isEqualTo(1);
        assertBilledAsTold(reply.json().getJsonObject("usage").getLong("total_cost"));
    }

    /**
     * Audit X, X-6: a worker that fails every request at once, its Final claiming 100,000 tokens,
     * is tried first (it announces the larger batch); another worker serves each request. The
     * client pays what it was told, for the serving worker's tokens only, and the failing worker
     * is paid nothing. Its claim is not judged, but each is logged at WARN, by its counts (audit
     * X2, note 4: the lie left no trace).
     */
    @Test
    void anAttemptFailingBeforeItsFirstToken_costsTheClientNothing_andPaysItsWorkerNothing() {
        LyingGenerator failing = liar(64);
        failing.failClaimingTokens = 100_000;
        net.addWorker(new SyntheticEngine(1000, 1, 4096, 10), SchedulerOptions.DEFAULTS, 2_000, PAYMENTS);

        long told = 0;
        List<String> warnings;
        try (LogCapture log = new LogCapture(Relay.class)) {
            for (int i = 0; i < 5; i++) {
                TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":16"));
                assertThat(reply.status()).as(reply.body()).isEqualTo(200);
                assertThat(reply.json().getJsonObject("usage").getLong("completion_tokens")).isEqualTo(11);
                told += reply.json().getJsonObject("usage").getLong("total_cost");
            }
            warnings = log.linesAt(Level.WARN);
        }

        assertThat(warnings).as("one line for each failed final, until its worker's circuit opened").isNotEmpty()
                .allSatisfy(line -> assertThat(line).contains("worker worker-1 reported usage past what it sent")
                        .contains("(prompt 2, completion 100000; 0 completion tokens relayed)")
                        .contains("its final failed the attempt, and its usage is not used").doesNotContain("tell me about"));
        assertBilledAsTold(told);
        assertWorkerPaidHalf("worker-2", told);
        assertThat(billing("worker-1").getLong("owed_nanoton")).isZero();
    }

    private void assertBilledAsTold(long told) {
        eventually("every request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).as("charged what the client was told").isEqualTo(told);
    }

    private void assertWorkerPaidHalf(String workerId, long billed) {
        eventually("the worker's fee is signed", () -> billing(workerId).getLong("sent_nanoton") == billed / 2);
        assertThat(billing(workerId).getLong("owed_nanoton")).isEqualTo(billed / 2);
    }

    private JsonObject billing(String workerId) {
        for (Object w : net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json().getJsonArray("workers")) {
            JsonObject worker = (JsonObject) w;
            if (worker.getString("id").equals(workerId)) {
                return worker.getJsonObject("billing");
            }
        }
        throw new AssertionError("no worker " + workerId + " in /admin/workers");
    }
}
