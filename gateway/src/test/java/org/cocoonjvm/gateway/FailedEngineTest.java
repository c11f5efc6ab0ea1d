package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ADMIN_KEY;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;

import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.Scheduler;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A worker whose engine step throws (as a kernel error would) must stop looking healthy: it
 * leaves its gateway, says so on {@code /status}, and refuses requests as unavailable. Real
 * gateway and worker on loopback; the engine is the synthetic one with a step that can be made to fail.
 */
class FailedEngineTest {
    private TestNetwork net;

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
    }

    @Test
    void engineStepThatThrows_takesTheWorkerOutOfTheGateway_statusSaysFailed_andRequestsGet503() {
        net = new TestNetwork();
        FailingEngine engine = new FailingEngine(new SyntheticEngine(200, 4, 4096));
        WorkerNode worker = net.addWorker((vertx, credit) -> new Scheduler(engine, SchedulerOptions.DEFAULTS, credit),
                WorkerPaymentOptions.IN_MEMORY);
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                TestNetwork.chat(SyntheticEngine.MODEL_NAME, false, "\"max_tokens\":2")).status()).isEqualTo(200);

        long spent = net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton();
        engine.failing.set(true);
        TestNetwork.Reply failed = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                TestNetwork.chat(SyntheticEngine.MODEL_NAME, false, ""));
        // It failed in its first engine step, before any output: the client pays nothing for it.
        assertThat(failed.status()).isEqualTo(502);
        assertThat(failed.json().containsKey("usage")).isFalse();
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isEqualTo(spent);

        TestNetwork.eventually("the worker left the gateway", () -> net.call(HttpMethod.GET, "/admin/workers", ADMIN_KEY, null)
                .json().getJsonArray("workers").isEmpty());
        JsonObject status = net.workerStatus(worker);
        assertThat(status.getString("state")).isEqualTo("failed");
        assertThat(status.getString("failure")).contains("injected kernel error");
        assertThat(TestNetwork.await(worker.failure())).hasMessageContaining("injected kernel error");
        HttpClient direct = net.vertx.createHttpClient();
        try {
            TestNetwork.Reply reply = TestNetwork.await(net.onClientContext(() -> direct.request(TestNetwork.post("/v1/chat/completions", API_KEY)
                    .setHost("127.0.0.1").setPort(TestNetwork.portOf(worker)))
                    .compose(r -> r.send(TestNetwork.chat(SyntheticEngine.MODEL_NAME, false, "\"max_tokens\":2")))
                    .compose(r -> r.body().map(body -> new TestNetwork.Reply(r.statusCode(), body.toString(), r)))));
            JsonObject error = reply.json().getJsonObject("error");
            assertThat(reply.status()).isEqualTo(503);
            assertThat(error.getString("code")).isEqualTo("no_capacity");
            assertThat(error.getString("message")).contains("engine failed").contains("injected kernel error");
        } finally {
            direct.close();
        }
    }

    /**
     * The prompt is reported when the sequence is admitted, and payment rounds run every 20 ms: one
     * runs while the failing step does. It must not pay the prompt, which the failed sequence takes
     * back, nor record it as the client's: the request still costs nothing on either side.
     */
    @Test
    void aFailureBeforeTheFirstToken_costsNothing_evenAfterAPaymentRound() {
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 20, 10_000_000_000L));
        FailingEngine engine = new FailingEngine(new SyntheticEngine(200, 4, 4096));
        engine.stepMs = 300;
        engine.failing.set(true);
        net.addWorker((vertx, credit) -> new Scheduler(engine, SchedulerOptions.DEFAULTS, credit),
                new WorkerPaymentOptions(null, "", 1_000_000, 10_000));

        TestNetwork.Reply failed = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                TestNetwork.chat(SyntheticEngine.MODEL_NAME, false, ""));

        assertThat(failed.status()).isEqualTo(502);
        assertThat(failed.json().containsKey("usage")).isFalse();
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isZero();
        TestNetwork.eventually("the channel, its worker gone, shows nothing owed or paid", () -> {
            var absent = net.call(HttpMethod.GET, "/admin/workers", ADMIN_KEY, null).json().getJsonArray("absent_channels");
            return absent.size() == 1 && absent.getJsonObject(0).getLong("sent_nanoton") == 0
                    && absent.getJsonObject(0).getLong("unpaid_nanoton") == 0;
        });
    }
}
