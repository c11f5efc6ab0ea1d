package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ADMIN_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import ch.qos.logback.classic.Level;
import com.iwebpp.crypto.TweetNaclFast;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.registry.SessionEndpoint;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Registration refusals as both sides see them: the worker's log says why it was refused, the
 * gateway lists it under {@code refused} in {@code /admin/workers} and logs it once (per minute),
 * with the worker's id. Real gateway and workers on loopback.
 */
class WorkerRegistrationTest {
    /** GatewayLink's log: what a worker's operator reads. */
    private static final String WORKER_LINK = "org.cocoonjvm.worker.serve.GatewayLink";

    private TestNetwork net;

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
    }

    private JsonObject admin() {
        TestNetwork.Reply r = net.call(HttpMethod.GET, "/admin/workers", ADMIN_KEY, null);
        assertThat(r.status()).isEqualTo(200);
        return r.json();
    }

    private JsonObject refusal(String reason) {
        JsonArray refused = admin().getJsonArray("refused");
        for (int i = 0; i < refused.size(); i++) {
            if (reason.equals(refused.getJsonObject(i).getString("reason"))) {
                return refused.getJsonObject(i);
            }
        }
        return null;
    }

    @Test
    void workerWithoutAPayoutAddress_onAnOnChainGateway_isRefusedWithTheReason_listed_andLoggedOnce() {
        // The refusal comes before any chain call: a chain nobody listens on, and no fees, are enough.
        ChainClient chain = new ChainClient("http://127.0.0.1:9", Duration.ofSeconds(1));
        FeeSchedule.GasPrices gas = new FeeSchedule.GasPrices(0, 0, 0, 0, 0);
        FeeSchedule.ForwardPrices forward = new FeeSchedule.ForwardPrices(0, 0, 0, 0);
        ChannelCosts costs = new ChannelCosts(new FeeSchedule(gas, gas, forward, forward, new FeeSchedule.StoragePrices(0, 0, 0)));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, PaymentOptions.DEFAULTS,
                new ChannelOnChain(chain, new ChainWallet(TweetNaclFast.Signature.keyPair(), chain, Clock.systemUTC()), costs,
                        ChannelOnChain.QUARANTINE, ChannelOnChain.CONDITIONAL_CLOSE), 1);
        try (LogCapture gateway = new LogCapture("ROOT"); LogCapture worker = new LogCapture(WORKER_LINK)) {
            Future<String> deployed = net.deployWorker("gpu-1", WorkerPaymentOptions.IN_MEMORY, net.gateway.port());

            eventually("the worker was refused twice", 15_000, () -> {
                JsonObject r = refusal("payout_address_invalid");
                return r != null && r.getLong("count") >= 2;
            });
            JsonObject refused = refusal("payout_address_invalid");
            assertThat(refused.getString("id")).isEqualTo("gpu-1");
            assertThat(refused.getString("message")).contains("payout_address ''", "--payout-address");
            assertThat(admin().getJsonArray("workers")).isEmpty();
            assertThat(deployed.isComplete()).isFalse();

            // The worker was told, and knows a retry will not fix it.
            assertThat(worker.linesAt(Level.ERROR)).anySatisfy(l -> assertThat(l)
                    .contains("refused this worker", "payout_address_invalid", "is not a TON address", "Retrying cannot fix"));
            // One warning on the gateway naming the worker, however often it retried; nothing at
            // ERROR but the worker's own line (before: ton4j's Error, unhandled on the event loop).
            assertThat(gateway.linesFrom("org.cocoonjvm.gateway").stream().filter(l -> l.contains("payout_address_invalid")))
                    .singleElement().satisfies(l -> assertThat(l).startsWith("WARN").contains("'gpu-1'"));
            assertThat(gateway.linesAt(Level.ERROR)).allSatisfy(l -> assertThat(l).contains("refused this worker"));
        }
    }

    @Test
    void aSecondWorkerClaimingALiveId_isRefused_andTheFirstKeepsItsPlace() {
        net = new TestNetwork();
        net.addWorker(100);  // worker-1
        String firstEndpoint = net.workers.getFirst().endpoint();
        try (LogCapture gateway = new LogCapture(SessionEndpoint.class); LogCapture worker = new LogCapture(WORKER_LINK)) {
            Future<String> impostor = net.deployWorker("worker-1", WorkerPaymentOptions.IN_MEMORY, net.gateway.port());

            eventually("the second worker was refused", 10_000, () -> refusal("worker_id_in_use") != null);
            assertThat(refusal("worker_id_in_use").getString("id")).isEqualTo("worker-1");
            List<JsonObject> workers = admin().getJsonArray("workers").stream().map(JsonObject.class::cast).toList();
            assertThat(workers).singleElement().satisfies(w -> {
                assertThat(w.getString("endpoint")).isEqualTo(firstEndpoint);
                assertThat(w.getJsonObject("billing").getBoolean("session")).isTrue();
            });
            assertThat(impostor.isComplete()).isFalse();
            assertThat(worker.lines()).anySatisfy(l -> assertThat(l).contains("worker id 'worker-1' is in use by another worker"));
            assertThat(gateway.linesAt(Level.WARN)).anySatisfy(l -> assertThat(l).contains("'worker-1'", "worker_id_in_use"));
        }
    }

    /**
     * The refused worker keeps trying, and registers once the id is free: it is then no longer
     * listed as refused (audit X2, note 5: /admin/workers kept its earlier refusal).
     */
    @Test
    void aWorkerRefusedForItsIdInUse_registersOnceTheIdIsFree_andIsNoLongerListedRefused() {
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, PaymentOptions.DISABLED);
        net.addWorker(100);  // worker-1
        Future<String> second = net.deployWorker("worker-1", WorkerPaymentOptions.IN_MEMORY, net.gateway.port());
        eventually("the second worker was refused", 10_000, () -> refusal("worker_id_in_use") != null);

        net.stopWorker(0);

        await(second);
        String endpoint = net.workers.getLast().endpoint();
        assertThat(admin().getJsonArray("workers")).singleElement()
                .satisfies(w -> assertThat(((JsonObject) w).getString("endpoint")).isEqualTo(endpoint));
        assertThat(admin().getJsonArray("refused")).isEmpty();
    }

    /**
     * Audit L, 4: the id went as it is into the gateway's log, where the access log is JSON lines, and
     * a newline in it wrote a forged access-log line before and after "registered".
     */
    @Test
    void anIdThatIsNotPrintableAscii_orTooLong_isRefusedAtHello_andLoggedWithoutItsNewlines() {
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, PaymentOptions.DISABLED);
        String forged = "{\"request_id\":\"chatcmpl-FORGED\",\"status\":200,\"cost_nanoton\":999999}";
        try (LogCapture gateway = new LogCapture(SessionEndpoint.class); LogCapture worker = new LogCapture(WORKER_LINK)) {
            Future<String> injecting = net.deployWorker("w\n" + forged + "\nx", WorkerPaymentOptions.IN_MEMORY,
                    net.gateway.port());
            Future<String> tooLong = net.deployWorker("w".repeat(3000), WorkerPaymentOptions.IN_MEMORY, net.gateway.port());

            eventually("both workers were refused", 10_000, () -> admin().getJsonArray("refused").size() == 2);
            assertThat(admin().getJsonArray("refused").stream().map(r -> ((JsonObject) r).getString("message")))
                    .containsExactlyInAnyOrder("worker_id must be printable ASCII without spaces; character 1 is U+000A",
                            "worker_id must be at most 128 characters, got 3000");
            assertThat(admin().getJsonArray("workers")).isEmpty();
            assertThat(injecting.isComplete() || tooLong.isComplete()).isFalse();
            assertThat(gateway.lines()).allSatisfy(l -> assertThat(l).doesNotContain("\n"))
                    .filteredOn(l -> l.contains("refused (invalid_hello)")).hasSize(2);
            assertThat(worker.linesAt(Level.ERROR)).anySatisfy(l -> assertThat(l)
                    .contains("invalid_hello", "worker_id must be printable ASCII without spaces; character 1 is U+000A"));
        }
    }

    @Test
    void theSameWorkerReconnecting_replacesItsOldSession(@TempDir Path dir) throws Exception {
        // Without payments: with them, the payment key's open channel holds the second session off
        // until the first one ends, whoever it is.
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, PaymentOptions.DISABLED);
        WorkerPaymentOptions sameKey = new WorkerPaymentOptions(Files.createDirectories(dir.resolve("payments")), "",
                1_000_000, 10_000);
        await(net.deployWorker("gpu-1", sameKey, net.gateway.port()));
        await(net.deployWorker("gpu-1", sameKey, net.gateway.port()));

        String restarted = net.workers.getLast().endpoint();
        eventually("the restarted worker's session replaced the first", () -> {
            JsonArray workers = admin().getJsonArray("workers");
            return workers.size() == 1 && workers.getJsonObject(0).getString("endpoint").equals(restarted);
        });
        assertThat(admin().getJsonArray("refused")).isEmpty();
    }
    /**
     * An operator takes a misbehaving worker out of routing over the admin API: its running stream
     * finishes, new requests go to other workers (or get a 503 saying why), and it comes back when
     * uncordoned.
     */
    @Test
    void anOperatorCordonsAWorker_itsStreamFinishes_newRequestsGoElsewhere_untilUncordoned() {
        net = new TestNetwork();
        net.addWorker(20);  // worker-1, slow enough that a stream is running when it is cordoned
        SseEvents stream = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", TestNetwork.API_KEY,
                TestNetwork.chat("synthetic", true, "\"max_tokens\":20")));
        eventually("the stream is under way", () -> stream.size() >= 1);

        TestNetwork.Reply cordon = net.call(HttpMethod.POST, "/admin/workers/worker-1/cordon", ADMIN_KEY, null);
        assertThat(cordon.status()).isEqualTo(200);
        assertThat(cordon.json().getBoolean("cordoned")).isTrue();
        assertThat(cordon.json().getBoolean("changed")).isTrue();
        assertThat(cordon.json().getInteger("in_flight")).isEqualTo(1);
        assertThat(admin().getJsonArray("workers").getJsonObject(0).getBoolean("cordoned")).isTrue();

        TestNetwork.Reply refused = net.call(HttpMethod.POST, "/v1/chat/completions", TestNetwork.API_KEY,
                TestNetwork.chat("synthetic", false, "\"max_tokens\":2"));
        assertThat(refused.status()).isEqualTo(503);
        assertThat(refused.json().getJsonObject("error").getString("message")).contains("taken out of service");
        assertThat(refused.response().getHeader("Retry-After")).isEqualTo("5");
        assertThat(net.call(HttpMethod.GET, "/v1/models", TestNetwork.API_KEY, null).json().getJsonArray("data")
                .getJsonObject(0).getInteger("workers")).as("a cordoned worker is not available").isZero();

        List<SseEvents.Event> events = await(Future.fromCompletionStage(stream.ended));
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(events.get(events.size() - 2).data()).contains("\"completion_tokens\":20");

        net.addWorker(1000);  // worker-2
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", TestNetwork.API_KEY,
                TestNetwork.chat("synthetic", false, "\"max_tokens\":2")).status()).isEqualTo(200);

        TestNetwork.Reply uncordon = net.call(HttpMethod.POST, "/admin/workers/worker-1/uncordon", ADMIN_KEY, null);
        assertThat(uncordon.json().getBoolean("changed")).isTrue();
        assertThat(admin().getJsonArray("workers")).allSatisfy(w -> assertThat(((JsonObject) w).getBoolean("cordoned")).isFalse());

        TestNetwork.Reply unknown = net.call(HttpMethod.POST, "/admin/workers/worker-9/cordon", ADMIN_KEY, null);
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(unknown.json().getJsonObject("error").getString("message")).contains("\"worker-9\"");
        assertThat(net.call(HttpMethod.POST, "/admin/workers/worker-2/cordon", TestNetwork.API_KEY, null).status())
                .as("a client key is no admin key").isIn(401, 403);
    }
}
