package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ACCOUNT;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.grpc.common.GrpcStatus;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.ledger.LeaseKeeper;
import org.cocoonjvm.billing.ledger.PostgresServer;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A short PostgreSQL outage under a serving gateway, as the launcher runs it (ledger threads of
 * its own, a lease keeper), on a server of the test's own that it stops and starts again. Streams
 * that end while the database is down are told their cost and settled once it is back, without a
 * restart; meanwhile new requests and {@code /v1/account} are refused 503 {@code ledger_unavailable}
 * with {@code Retry-After}, and {@code /ready} is 503; afterwards the first requests succeed.
 */
class LedgerOutagePostgresTest {
    private static final int STREAMS = 6;

    private final ExecutorService ledgerThreads = Executors.newFixedThreadPool(4);
    private PostgresServer server;
    private JdbcAccountBook ledger;
    private LeaseKeeper lease;
    private TestNetwork net;

    @BeforeEach
    void start() {
        server = PostgresServer.startOwn();
        ledger = JdbcAccountBook.open(server.newDatabaseUrl(), Clock.systemUTC(), 4, new GatewayId("gw-1"),
                Duration.ofSeconds(30));
        lease = LeaseKeeper.start(ledger, Duration.ofMillis(300), lost -> { });
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, ledger, ledgerThreads);
    }

    @AfterEach
    void stop() throws InterruptedException {
        if (net != null) {
            net.close();
            lease.close();
            ledger.close();
        }
        ledgerThreads.shutdownNow();
        if (server != null) {
            server.stop();
        }
    }

    @Test
    void aShortOutage_settlesWhatEndedDuringIt_refusesWith503_andServesAgainAtOnce() throws Exception {
        net.addWorker(40);   // 25 ms a token: the streams outlive the server's stop
        List<SseEvents> streams = new ArrayList<>();
        for (int i = 0; i < STREAMS; i++) {
            streams.add(SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", true, "\"max_tokens\":80"))));
        }
        TestNetwork.eventually("every stream runs", () -> streams.stream().allMatch(s -> s.size() >= 2));
        LogCapture payments = new LogCapture(ChannelBilling.class);

        server.shutDown();
        long told = 0;
        Map<String, Long> toldById = new HashMap<>();
        for (SseEvents stream : streams) {
            List<SseEvents.Event> events = stream.ended.get(20, TimeUnit.SECONDS);
            JsonObject last = new JsonObject(events.get(events.size() - 2).data());
            told += last.getJsonObject("usage").getLong("total_cost");
            toldById.put(last.getString("id"), last.getJsonObject("usage").getLong("total_cost"));
        }
        assertThat(told).isPositive();

        TestNetwork.Reply refused = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false,
                "\"max_tokens\":5"));
        assertThat(refused.status()).isEqualTo(503);
        assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("ledger_unavailable");
        assertThat(Integer.parseInt(refused.response().getHeader("Retry-After"))).isPositive();
        TestNetwork.Reply account = net.call(HttpMethod.GET, "/v1/account", API_KEY, null);
        assertThat(account.status()).isEqualTo(503);
        assertThat(account.json().getJsonObject("error").getString("code")).isEqualTo("ledger_unavailable");
        assertThat(account.response().getHeader("Retry-After")).isNotNull();
        TestNetwork.Reply lookup = net.call(HttpMethod.GET, "/v1/requests/" + toldById.keySet().iterator().next(), API_KEY, null);
        assertThat(lookup.status()).isEqualTo(503);
        assertThat(lookup.json().getJsonObject("error").getString("code")).isEqualTo("ledger_unavailable");
        assertThat(lookup.response().getHeader("Retry-After")).isNotNull();
        InferenceGrpc.Call grpc = new InferenceGrpc(net).call(API_KEY, InferenceGrpc.chat("synthetic").setMaxTokens(5).build());
        assertThat(grpc.status).isEqualTo(GrpcStatus.UNAVAILABLE);
        assertThat(grpc.metadata("cocoon-error")).isEqualTo("ledger_unavailable");
        assertThat(grpc.metadata("retry-after")).isNotNull();
        TestNetwork.Reply ready = net.call(HttpMethod.GET, "/ready", null, null);
        assertThat(ready.status()).isEqualTo(503);
        assertThat(ready.json().getString("status")).isEqualTo("ledger unavailable");
        assertThat(ready.json().getString("reason")).contains("SQLState");
        Exposition down = scrape();
        assertThat(down.get("cocoon_ledger_settlements_pending")).isEqualTo(STREAMS);
        assertThat(down.get("cocoon_ledger_up")).isZero();

        server.startAgain();
        long after = 0;
        for (int i = 0; i < 3; i++) {
            TestNetwork.Reply served = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false,
                    "\"max_tokens\":5"));
            assertThat(served.status()).as("request %d after the database is back: %s", i, served.body()).isEqualTo(200);
            after += served.json().getJsonObject("usage").getLong("total_cost");
        }
        TestNetwork.eventually("the settlements the ledger missed are taken", 10_000,
                () -> ledger.balance(ACCOUNT).reservedNanoton() == 0);
        long spent = told + after;
        assertThat(ledger.balance(ACCOUNT)).as("charged exactly what the clients were told, once")
                .isEqualTo(new AccountState(ACCOUNT, TestNetwork.START_BALANCE - spent, 0, spent));
        assertThat(ledger.requests(ACCOUNT)).hasSize(STREAMS + 3)
                .extracting(RequestRecord::requestId).doesNotHaveDuplicates();
        toldById.forEach((id, cost) -> assertThat(net.call(HttpMethod.GET, "/v1/requests/" + id, API_KEY, null).json()
                .getJsonObject("usage").getLong("total_cost")).as("settled in the background, looked up as told").isEqualTo(cost));
        TestNetwork.eventually("ready again", () -> net.call(HttpMethod.GET, "/ready", null, null).status() == 200);
        Exposition up = scrape();
        assertThat(up.get("cocoon_ledger_settlements_pending")).isZero();
        assertThat(up.get("cocoon_ledger_up")).isEqualTo(1);
        assertThat(up.get("cocoon_ledger_transactions_retried_total", "race", "deadlock")).as("one lock order").isZero();
        // Payment rounds failed all along the outage (they checkpoint in the ledger first): said
        // once, then once when they work again; at a round every 5 ms it was 40 warnings a second.
        TestNetwork.eventually("payment rounds work again",
                () -> payments.lines().stream().anyMatch(line -> line.contains("payment rounds work again after")));
        assertThat(payments.lines()).filteredOn(line -> line.contains("payment round over")).hasSize(1);
        payments.close();
    }

    /**
     * A database that hangs instead of refusing (a frozen primary, a partition: audit N, N-1). The
     * calls already on it wait for the driver's socket time limit (10 s), and the ledger threads
     * with them; what comes after is not queued behind them: once a call has gone unanswered for
     * 3 s, {@code /ready} is 503, new requests are refused at once, and streams ending meanwhile
     * are answered with their cost at once and settled once the database answers again.
     */
    @Test
    void aHungDatabase_isTakenOutOfRotationInSeconds_newRequestsRefusedAtOnce_endingStreamsAnswered() throws Exception {
        // 25 ms a token, 200 tokens: the streams end after the hang is noticed.
        net.addWorker(new SyntheticEngine(40, 8, 4096, 1_000), SchedulerOptions.DEFAULTS, 2_000);
        List<SseEvents> streams = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            streams.add(SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", true, "\"max_tokens\":200,\"stream_options\":{\"include_usage\":true}"))));
        }
        TestNetwork.eventually("every stream runs", () -> streams.stream().allMatch(s -> s.size() >= 2));

        server.freeze();
        long frozeAt = System.nanoTime();
        long told = 0;
        try {
            TestNetwork.eventually("out of rotation", 8_000, () -> net.call(HttpMethod.GET, "/ready", null, null).status() == 503);
            assertThat(net.call(HttpMethod.GET, "/ready", null, null).json().getString("reason")).contains("unanswered");
            long asked = System.nanoTime();
            TestNetwork.Reply refused = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false,
                    "\"max_tokens\":5"));
            assertThat(refused.status()).isEqualTo(503);
            assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("ledger_unavailable");
            assertThat(net.call(HttpMethod.GET, "/v1/account", API_KEY, null).status()).isEqualTo(503);
            assertThat(Duration.ofNanos(System.nanoTime() - asked)).as("refused, not queued behind the hung calls")
                    .isLessThan(Duration.ofSeconds(2));
            for (SseEvents stream : streams) {
                List<SseEvents.Event> events = stream.ended.get(10, TimeUnit.SECONDS);
                told += new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage").getLong("total_cost");
            }
            assertThat(Duration.ofNanos(System.nanoTime() - frozeAt)).as("the streams' ends did not wait for the hung calls")
                    .isLessThan(Duration.ofSeconds(9));
        } finally {
            server.thaw();
        }

        TestNetwork.eventually("ready again", 20_000, () -> net.call(HttpMethod.GET, "/ready", null, null).status() == 200);
        TestNetwork.eventually("the settlements the ledger missed are taken", 20_000,
                () -> ledger.balance(ACCOUNT).reservedNanoton() == 0);
        assertThat(ledger.balance(ACCOUNT)).as("charged exactly what the clients were told")
                .isEqualTo(new AccountState(ACCOUNT, TestNetwork.START_BALANCE - told, 0, told));
        TestNetwork.Reply served = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false,
                "\"max_tokens\":5"));
        assertThat(served.status()).as(served.body()).isEqualTo(200);
    }

    private Exposition scrape() {
        return Exposition.parse(net.call(HttpMethod.GET, "/metrics", null, null).body());
    }
}
