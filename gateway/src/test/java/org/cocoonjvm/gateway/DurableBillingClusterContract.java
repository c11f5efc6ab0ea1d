package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ACCOUNT;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.gateway.api.CompletionsHandler;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Gateway ids and their leases on the durable ledger: two gateways serving one account (debits
 * exactly the priced usage, each worker paid from its own gateway's key; a key's limits counted by
 * each gateway on its own, audit N-6), a gateway swept while streaming (billed its last checkpoint,
 * its worker paid no more, new requests 503), a taken-over id (503), and a restart after a crash
 * that logs, counts and looks up what its recovery billed (audit V-8). Apart from
 * {@link DurableBillingOneGatewayContract} because each test here is about what gateway ids and
 * leases do to billing: a second gateway, a sweeper, a successor or the crashed gateway's restart
 * opens its own book beside or after the first, under an id and a lease.
 */
abstract class DurableBillingClusterContract extends DurableBillingFixture {
    /**
     * Audit N-6, as the gateway's README says ("Several gateways"): a key's limits are counted by
     * each gateway in its own memory, not in the shared ledger, so two gateways let a key through
     * twice its requests per minute. Pinned so that the README changes with it.
     */
    @Test
    void twoGatewaysOnOneLedger_eachCountAKeysLimitsOnItsOwn() throws Exception {
        url = database().newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 4, new GatewayId("gw-1"), JdbcAccountBook.DEFAULT_LEASE_EXPIRY);
        JdbcAccountBook secondLedger = JdbcAccountBook.open(url, Clock.systemUTC(), 4, new GatewayId("gw-2"),
                JdbcAccountBook.DEFAULT_LEASE_EXPIRY);
        KeyLimits twoAMinute = new KeyLimits(2, 0, 0);
        net = new TestNetwork(twoAMinute, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, new EventLoopGuard(ledger), ledgerThreads);
        TestNetwork second = null;
        try {
            second = new TestNetwork(twoAMinute, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                    new EventLoopGuard(secondLedger), ledgerThreads);
            net.addWorker(400);
            second.addWorker(400);
            List<Integer> statuses = new ArrayList<>();
            for (TestNetwork gateway : List.of(net, second)) {
                for (int i = 0; i < 3; i++) {
                    statuses.add(gateway.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                            chat("synthetic", false, "\"max_tokens\":3")).status());
                }
            }
            assertThat(statuses).as("2 a minute on each gateway, 4 in all").containsExactly(200, 200, 429, 200, 200, 429);
        } finally {
            if (second != null) {
                second.close();
            }
            secondLedger.close();
        }
    }

    /**
     * Two gateways on one ledger, as a cluster runs them: each with its own book (gateway id),
     * journal and worker, both serving the same account at once. Debits are the priced usage of
     * every request on either, to the nanoTON; each gateway pays its worker from its own key, on a
     * channel of its own, exactly the worker fees audited on that channel.
     */
    @Test
    void twoGatewaysOnOneLedger_debitExactlyThePricedUsage_andPayEachWorkerFromTheirOwnKey() throws Exception {
        url = database().newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 4, new GatewayId("gw-1"), JdbcAccountBook.DEFAULT_LEASE_EXPIRY);
        JdbcAccountBook secondLedger = JdbcAccountBook.open(url, Clock.systemUTC(), 4, new GatewayId("gw-2"),
                JdbcAccountBook.DEFAULT_LEASE_EXPIRY);
        PaymentOptions payments = new PaymentOptions(true, 4, 50, 10_000_000_000L);
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, payments,
                new EventLoopGuard(ledger), ledgerThreads, ledger.channelJournal());
        TestNetwork second = null;
        try {
            second = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, payments,
                    new EventLoopGuard(secondLedger), ledgerThreads, secondLedger.channelJournal());
            List<WorkerNode> workers = List.of(net.addWorker(400), second.addWorker(400));
            List<SseEvents> reading = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                TestNetwork gateway = i % 2 == 0 ? net : second;
                reading.add(SseEvents.read(gateway.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                        chat("synthetic", true, "\"max_tokens\":" + (20 + 5 * i)))));
            }
            long priced = 0;
            for (SseEvents r : reading) {
                List<SseEvents.Event> events = r.ended.get(20, TimeUnit.SECONDS);
                priced += new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage").getLong("total_cost");
            }

            assertThat(priced).isPositive();
            assertThat(ledger.balance(ACCOUNT)).as("granted once, debited exactly the priced usage")
                    .isEqualTo(new AccountState(ACCOUNT, TestNetwork.START_BALANCE - priced, 0, priced));
            List<RequestRecord> audit = ledger.requests(ACCOUNT);
            assertThat(audit).hasSize(6);
            assertThat(audit.stream().mapToLong(RequestRecord::clientCostNanoton).sum()).isEqualTo(priced);
            Map<String, Long> feesByChannel = new HashMap<>();
            audit.forEach(r -> feesByChannel.merge(r.channelId(), r.workerFeeNanoton(), Long::sum));
            assertThat(feesByChannel).as("every audit row names its channel, one per gateway").hasSize(2)
                    .doesNotContainKey(null);
            for (WorkerNode worker : workers) {
                String channel = net.workerStatus(worker).getJsonArray("channels").getJsonObject(0).getString("channel_id");
                TestNetwork.eventually("the worker is paid the fees audited on its channel",
                        () -> sent(worker) == feesByChannel.get(channel));
            }
            assertThat(workers.stream().map(w -> net.workerStatus(w).getJsonArray("channels").getJsonObject(0)
                    .getString("gateway_public_key")).distinct()).as("each worker's channel, signed by its own gateway").hasSize(2);
            try (Connection c = DriverManager.getConnection(url);
                 Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT COUNT(DISTINCT c.gateway_id), COUNT(DISTINCT k.seed_hex), "
                         + "COUNT(DISTINCT c.payer_key) FROM channels c JOIN payer_keys k ON k.gateway_id = c.gateway_id")) {
                rs.next();
                assertThat(List.of(rs.getInt(1), rs.getInt(2), rs.getInt(3))).as("gateways, payer keys, signing keys")
                        .containsExactly(2, 2, 2);
            }
        } finally {
            if (second != null) {
                second.close();
            }
            secondLedger.close();
        }
    }

    /**
     * The late writer, end to end: a gateway streams a request with per-token payments, its lease
     * expires (its clock jumps past it) and another gateway's sweep ends the request at its last
     * checkpoint. The first gateway goes on streaming to its client, but bills nothing more and
     * pays its worker nothing more: the worker holds at most the worker fees of what the ledger
     * bills, and the fenced gateway answers new requests 503.
     */
    @Test
    void aSweptGateway_billsAndPaysNothingPastItsLastCheckpoint() throws Exception {
        url = database().newDatabaseUrl();
        MutableClock clock = new MutableClock(Instant.now());
        Duration expiry = Duration.ofSeconds(60);
        ledger = JdbcAccountBook.open(url, clock, 4, new GatewayId("gw-1"), expiry);
        try (JdbcAccountBook sweeper = JdbcAccountBook.open(url, clock, 2, new GatewayId("gw-2"), expiry)) {
            net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                    new PaymentOptions(true, 1, 50, 10_000_000_000L), new EventLoopGuard(ledger), ledgerThreads,
                    ledger.channelJournal());
            WorkerNode worker = net.addWorker(50);   // 20 ms a token: the stream outlives the sweep
            SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", true, "\"max_tokens\":300")));
            TestNetwork.eventually("the worker is paid during the stream", () -> sse.size() >= 10 && sent(worker) > 0);

            clock.advance(expiry.plusSeconds(1));
            sweeper.renewLease();
            List<Settlement> swept = sweeper.sweep().stream().map(RecoveredReservation::settlement).toList();
            Thread.sleep(200);   // a state journaled just before the fence may still be on its way
            long paidAtSweep = sent(worker);
            sse.ended.get(20, TimeUnit.SECONDS);

            assertThat(swept).singleElement().satisfies(s -> assertThat(s.chargedNanoton()).isPositive());
            long billed = swept.get(0).chargedNanoton();
            assertThat(ledger.balance(ACCOUNT)).as("billed the last checkpoint, nothing after")
                    .isEqualTo(new AccountState(ACCOUNT, TestNetwork.START_BALANCE - billed, 0, billed));
            Thread.sleep(300);   // rounds keep being tried: each one's checkpoint is refused
            assertThat(sent(worker)).as("nothing signed after the sweep").isEqualTo(paidAtSweep);
            assertThat(2 * sent(worker)).as("worker fees paid vs client cost billed (fee 1, price 2)")
                    .isLessThanOrEqualTo(billed);
            TestNetwork.Reply refused = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":5"));
            assertThat(refused.status()).isEqualTo(503);
        }
    }

    /**
     * A gateway killed with a stream running (audit V, V-8): its ledger goes with it (its pool is
     * closed under the stream, so nothing after the last checkpoint reaches the database), and the
     * next start on that ledger, as the same gateway, ends the request at that checkpoint. That start
     * writes the request's access-log line, in the relayed lines' schema, counts it in /metrics and
     * finds it at GET /v1/requests/{id}, all at what the ledger charged. Before, the charge showed in
     * the account's spent and nowhere else: no line, no metric, a 404.
     */
    @Test
    void aRestartAfterACrash_logsCountsAndLooksUpWhatItsRecoveryBilled() throws Exception {
        url = database().newDatabaseUrl();
        GatewayId gateway = new GatewayId("gw-1");
        PaymentOptions perToken = new PaymentOptions(true, 1, 50, 10_000_000_000L);
        Logger access = (Logger) LoggerFactory.getLogger("cocoon.access");
        Level levelBefore = access.getLevel();
        ListAppender<ILoggingEvent> lines = new ListAppender<>();
        access.setLevel(Level.INFO);
        lines.start();
        access.addAppender(lines);
        try {
            JdbcAccountBook dying = JdbcAccountBook.open(url, Clock.systemUTC(), 4, gateway, JdbcAccountBook.DEFAULT_LEASE_EXPIRY);
            TestNetwork crashing = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                    perToken, new EventLoopGuard(dying), ledgerThreads, dying.channelJournal());
            String id;
            try {
                net = crashing;
                WorkerNode worker = crashing.addWorker(50);
                HttpClientResponse response = crashing.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                        chat("synthetic", true, "\"max_tokens\":60"));
                id = response.getHeader(CompletionsHandler.REQUEST_ID_HEADER);
                SseEvents sse = SseEvents.read(response);
                TestNetwork.eventually("the worker is paid during the stream", () -> sse.size() >= 10 && sent(worker) > 0);
                dying.close();   // the crash: nothing the gateway does from here reaches the ledger
                sse.ended.get(20, TimeUnit.SECONDS);
            } finally {
                net = null;
                crashing.close();
            }
            long checkpoint = billedSoFar();
            assertThat(checkpoint).as("checkpointed before the crash").isPositive();
            JsonObject relayed = loggedLines(lines).stream().filter(l -> id.equals(l.getString("request_id")))
                    .findFirst().orElseThrow();

            ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 4, gateway, JdbcAccountBook.DEFAULT_LEASE_EXPIRY);
            net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE, perToken,
                    new EventLoopGuard(ledger), ledgerThreads, ledger.channelJournal());
            List<RecoveredReservation> recovered = net.billing.recoverOpenReservations();

            assertThat(recovered).singleElement().satisfies(r -> {
                assertThat(r.settlement().chargedNanoton()).isEqualTo(checkpoint);
                assertThat(r.label()).isEqualTo(new ReservationLabel(id, "test-key", "synthetic"));
                assertThat(r.workerId()).isEqualTo("worker-1");
            });
            TokenCounts tokens = recovered.getFirst().tokens();
            List<JsonObject> restarted = loggedLines(lines).stream()
                    .filter(l -> "gateway_restarted".equals(l.getString("error"))).toList();
            assertThat(restarted).singleElement().satisfies(line -> {
                assertThat(line.fieldNames()).as("the relayed lines' schema").containsExactlyElementsOf(relayed.fieldNames());
                assertThat(line.getString("request_id")).isEqualTo(id);
                assertThat(line.getString("key")).isEqualTo("test-key");
                assertThat(line.getString("model")).isEqualTo("synthetic");
                assertThat(line.getString("worker")).isEqualTo("worker-1");
                assertThat(line.getInteger("status")).isEqualTo(502);
                assertThat(line.getLong("prompt_tokens")).isEqualTo(tokens.prompt());
                assertThat(line.getLong("completion_tokens")).isEqualTo(tokens.completion()).isPositive();
                assertThat(line.getLong("cost_nanoton")).isEqualTo(checkpoint);
            });
            Exposition metrics = Exposition.parse(net.call(HttpMethod.GET, "/metrics", null, null).body());
            assertThat(metrics.get("cocoon_recovered_requests_total", "code", "gateway_restarted")).isEqualTo(1);
            assertThat(metrics.get("cocoon_recovered_billed_nanoton_total", "code", "gateway_restarted")).isEqualTo(checkpoint);
            assertThat(metrics.get("cocoon_recovered_requests_total", "code", "gateway_lease_expired")).isZero();
            TestNetwork.Reply lookup = net.call(HttpMethod.GET, "/v1/requests/" + id, API_KEY, null);
            assertThat(lookup.status()).isEqualTo(200);
            assertThat(lookup.json().getJsonObject("usage").getLong("total_cost")).isEqualTo(checkpoint);
            assertThat(lookup.json().getJsonObject("usage").getLong("completion_tokens")).isEqualTo(tokens.completion());
            assertThat(ledger.balance(ACCOUNT).spentNanoton()).isEqualTo(checkpoint);
        } finally {
            access.detachAppender(lines);
            access.setLevel(levelBefore);
        }
    }

    /**
     * Another process started with this gateway's id (or a sweep fenced it): the gateway is no longer
     * the owner of its id's lease, so it refuses new requests (503, for a load balancer to try
     * another gateway) and holds nothing.
     */
    @Test
    void aGatewayWhoseLeaseWasTakenOver_refusesRequestsWith503_andReservesNothing() {
        start(TestNetwork.START_BALANCE);
        net.addWorker(1000);

        try (JdbcAccountBook successor = JdbcAccountBook.open(url, Clock.systemUTC(), 1)) {
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":5"));

            assertThat(reply.status()).isEqualTo(503);
            assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("shutting_down");
            assertThat(successor.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, TestNetwork.START_BALANCE, 0, 0));
        }
    }

    private static List<JsonObject> loggedLines(ListAppender<ILoggingEvent> lines) {
        return List.copyOf(lines.list).stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
    }
}
