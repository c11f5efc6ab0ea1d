package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ACCOUNT;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.Context;
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
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.ledger.TestDatabase;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.gateway.api.CompletionsHandler;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The gateway on the durable ledger, as {@code ./cocoon gateway} runs it: the ledger's calls run on
 * a pool of their own, never on an event loop, and {@code GET /v1/account} shows what the ledger
 * holds. Subclasses pick the database.
 */
abstract class DurableBillingContract {
    private static final PriceSchedule PRICES = PriceSchedule.of("synthetic", 2, 1);

    /** A new, empty ledger database. */
    protected abstract TestDatabase database();

    private String url;
    private final ExecutorService ledgerThreads = Executors.newFixedThreadPool(4);
    private final List<String> onEventLoop = new ArrayList<>();
    private JdbcAccountBook ledger;
    private TestNetwork net;

    private TestNetwork start(long balance) {
        url = database().newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 4);
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, balance, new EventLoopGuard(ledger), ledgerThreads);
        return net;
    }

    @AfterEach
    void stop() {
        ledgerThreads.shutdownNow();
        if (net != null) {   // null when the database was not there to start on (a skipped test)
            net.close();
            ledger.close();
        }
        assertThat(onEventLoop).as("ledger calls made on an event loop").isEmpty();
    }

    @Test
    void account_showsTheLedgersTotalsAndHowToDeposit() {
        start(5_000);

        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/v1/account", API_KEY, null);

        assertThat(reply.status()).isEqualTo(200);
        JsonObject account = reply.json();
        assertThat(account.getString("object")).isEqualTo("account");
        assertThat(account.getLong("balance_nanoton")).isEqualTo(5_000);
        assertThat(account.getLong("reserved_nanoton")).isZero();
        assertThat(account.getLong("available_nanoton")).isEqualTo(5_000);
        assertThat(account.getLong("spent_nanoton")).isZero();
        assertThat(account.getString("deposit_address")).isEqualTo(TestNetwork.DEPOSIT_ADDRESS);
        String comment = account.getString("deposit_comment");
        assertThat(comment).isEqualTo(ledger.account(ACCOUNT).depositComment());
        assertThat(ledger.accountByDepositComment(comment).map(Account::accountId)).contains(ACCOUNT);
    }

    @Test
    void account_withABadKey_is401() {
        start(5_000);

        TestNetwork.Reply missing = net.call(HttpMethod.GET, "/v1/account", null, null);
        TestNetwork.Reply wrong = net.call(HttpMethod.GET, "/v1/account", "sk-wrong", null);

        assertThat(missing.status()).isEqualTo(401);
        assertThat(wrong.status()).isEqualTo(401);
        assertThat(wrong.json().getJsonObject("error").getString("code")).isEqualTo("invalid_api_key");
    }

    @Test
    void streamedRequests_debitExactlyTheirPricedUsage_andEachIsAudited() throws Exception {
        start(TestNetwork.START_BALANCE);
        net.addWorker(1000);
        long expected = 0;
        int requests = 5;
        for (int i = 0; i < requests; i++) {
            HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", true, "\"max_tokens\":" + (3 + i)));
            List<SseEvents.Event> events = SseEvents.read(response).ended.get(10, TimeUnit.SECONDS);
            JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");
            long cached = Optional.ofNullable(usage.getJsonObject("prompt_tokens_details"))
                    .map(d -> d.getLong("cached_tokens", 0L)).orElse(0L);
            long price = Pricing.cost(PRICES, new TokenCounts(usage.getLong("prompt_tokens"), cached,
                    usage.getLong("completion_tokens"), 0)).clientCost();
            assertThat(usage.getLong("total_cost")).isEqualTo(price);
            expected += price;
            // The final usage is sent once the ledger holds it: no waiting needed to see it, nor to look it up.
            assertThat(ledger.balance(ACCOUNT).spentNanoton()).isEqualTo(expected);
            String id = response.getHeader(CompletionsHandler.REQUEST_ID_HEADER);
            JsonObject billed = net.call(HttpMethod.GET, "/v1/requests/" + id, API_KEY, null).json().getJsonObject("usage");
            assertThat(billed.getLong("total_cost")).isEqualTo(price);
            assertThat(billed.getLong("prompt_tokens")).isEqualTo(usage.getLong("prompt_tokens"));
            assertThat(billed.getLong("completion_tokens")).isEqualTo(usage.getLong("completion_tokens"));
        }

        JsonObject account = net.call(HttpMethod.GET, "/v1/account", API_KEY, null).json();
        assertThat(account.getLong("spent_nanoton")).isEqualTo(expected);
        assertThat(account.getLong("balance_nanoton")).isEqualTo(TestNetwork.START_BALANCE - expected);
        assertThat(account.getLong("reserved_nanoton")).isZero();
        List<RequestRecord> audit = ledger.requests(ACCOUNT);
        assertThat(audit).hasSize(requests);
        assertThat(audit).allSatisfy(r -> {
            assertThat(r.workerId()).isEqualTo("worker-1");
            assertThat(r.requestId()).startsWith("chatcmpl-");
            assertThat(r.workerFeeNanoton()).isEqualTo(r.clientCostNanoton() / 2);   // fee 1, price 2 a token
            assertThat(r.gatewayMarginNanoton()).isEqualTo(r.clientCostNanoton() - r.workerFeeNanoton());
        });
        assertThat(audit.stream().mapToLong(RequestRecord::clientCostNanoton).sum()).isEqualTo(expected);
    }

    /**
     * Per-token payments (K = 1) over the durable ledger and journal, with a slow ledger (each
     * checkpoint takes 20 ms more): sampled all along, the worker never holds a state worth more
     * than the worker fees of what the ledger bills (fee 1, price 2 a token: half), and at the end
     * the worker's state is the sum of the audited worker fees, to the nanoTON.
     */
    @Test
    void perTokenPayments_neverRunAheadOfTheLedger_andEndAtTheSumOfWorkerFees() throws Exception {
        url = database().newDatabaseUrl();
        ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 4);
        AccountBook slow = new EventLoopGuard(ledger) {
            @Override
            public void recordProgress(Map<Reservation, Long> progress, Map<Reservation, WorkerShare> shares) {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                super.recordProgress(progress, shares);
            }
        };
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, 10_000_000_000L), slow, ledgerThreads, ledger.channelJournal());
        WorkerNode worker = net.addWorker(400);
        List<HttpClientResponse> streams = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            streams.add(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", true, "\"max_tokens\":" + (60 + 10 * i))));
        }
        List<SseEvents> reading = streams.stream().map(SseEvents::read).toList();
        int samples = 0;
        while (!reading.stream().allMatch(r -> r.ended.isDone())) {
            long sent = sent(worker);            // first the worker's state, then the ledger, which only grows
            long billed = billedSoFar();
            assertThat(2 * sent).as("worker fees paid vs client cost billed").isLessThanOrEqualTo(billed);
            samples++;
        }
        for (SseEvents r : reading) {
            r.ended.get(20, TimeUnit.SECONDS);
        }

        List<RequestRecord> audit = ledger.requests(ACCOUNT);
        long fees = audit.stream().mapToLong(RequestRecord::workerFeeNanoton).sum();
        long costs = audit.stream().mapToLong(RequestRecord::clientCostNanoton).sum();
        TestNetwork.eventually("the worker is paid every fee", () -> sent(worker) == fees);
        assertThat(samples).isPositive();
        assertThat(ledger.balance(ACCOUNT).spentNanoton()).isEqualTo(costs);
        assertThat(audit.stream().mapToLong(RequestRecord::gatewayMarginNanoton).sum()).isEqualTo(costs - fees);
    }

    /**
     * Two gateways on one ledger, as a cluster runs them: each with its own book (gateway id),
     * journal and worker, both serving the same account at once. Debits are the priced usage of
     * every request on either, to the nanoTON; each gateway pays its worker from its own key, on a
     * channel of its own, exactly the worker fees audited on that channel.
     */
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

    private static List<JsonObject> loggedLines(ListAppender<ILoggingEvent> lines) {
        return List.copyOf(lines.list).stream().map(e -> new JsonObject(e.getFormattedMessage())).toList();
    }

    private long sent(WorkerNode worker) {
        var channels = net.workerStatus(worker).getJsonArray("channels");
        return channels.isEmpty() ? 0 : channels.getJsonObject(0).getLong("sent_nanoton");
    }

    /** What the ledger bills so far: charges of ended reservations, progress of open ones. */
    private long billedSoFar() throws Exception {
        try (Connection c = DriverManager.getConnection(url);
             Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT COALESCE(SUM(CASE WHEN state = 'open' THEN progress_nanoton "
                     + "ELSE charged_nanoton END), 0) FROM reservations")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    @Test
    void duringAStream_theHoldShowsAsReserved() throws Exception {
        start(TestNetwork.START_BALANCE);
        net.addWorker(20);   // 50 ms a token: the stream stays open while we look
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":40"));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("the stream runs", () -> sse.size() >= 2);

        JsonObject during = net.call(HttpMethod.GET, "/v1/account", API_KEY, null).json();
        assertThat(during.getLong("reserved_nanoton")).isPositive();
        assertThat(during.getLong("available_nanoton"))
                .isEqualTo(TestNetwork.START_BALANCE - during.getLong("reserved_nanoton"));

        sse.ended.get(20, TimeUnit.SECONDS);
        JsonObject after = net.call(HttpMethod.GET, "/v1/account", API_KEY, null).json();
        assertThat(after.getLong("reserved_nanoton")).isZero();
        assertThat(after.getLong("spent_nanoton")).isPositive();
        assertThat(after.getLong("balance_nanoton")).isEqualTo(TestNetwork.START_BALANCE - after.getLong("spent_nanoton"));
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

    @Test
    void insufficientBalance_is402_andNothingIsReserved() {
        start(10);
        net.addWorker(1000);

        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":50"));

        assertThat(reply.status()).isEqualTo(402);
        assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("insufficient_balance");
        assertThat(reply.json().getJsonObject("error").getString("message")).contains("10 nanoTON available");
        assertThat(ledger.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, 10, 0, 0));
    }

    @Test
    void checkpoint_isChargedEvenIfTheFinalUsageIsLower_andSurvivesARestart() throws Exception {
        start(1_000_000);
        TonRequestBilling billing = new TonRequestBilling(ledger, ledgerThreads, model -> PRICES, null);
        Usage soFar = Usage.newBuilder().setPromptTokens(10).setCompletionTokens(40).build();
        long checkpointCost = Pricing.cost(PRICES, new TokenCounts(10, 0, 40, 0)).clientCost();

        RequestBilling.Charge settledLow = billing.reserve("req-a", "test-key", ACCOUNT, "synthetic", 100, 50)
                .toCompletableFuture().get(10, TimeUnit.SECONDS);
        assertThat(settledLow.checkpoint(soFar).toCompletableFuture().get(10, TimeUnit.SECONDS)).isTrue();
        RequestBilling.Settling settling = settledLow.settle("worker-1", null,
                Usage.newBuilder().setPromptTokens(10).setCompletionTokens(5).build());
        settling.accounted().toCompletableFuture().get(10, TimeUnit.SECONDS);
        assertThat(ledger.balance(ACCOUNT).spentNanoton()).as("the checkpoint was acknowledged").isEqualTo(checkpointCost);

        // A request cut by a crash: reserved and checkpointed, never settled; the next start settles it.
        RequestBilling.Charge cut = billing.reserve("req-b", "test-key", ACCOUNT, "synthetic", 100, 50)
                .toCompletableFuture().get(10, TimeUnit.SECONDS);
        cut.checkpoint(soFar).toCompletableFuture().get(10, TimeUnit.SECONDS);
        ledger.close();
        ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 4);
        assertThat(ledger.balance(ACCOUNT).reservedNanoton()).isPositive();

        assertThat(ledger.recoverOpenReservations()).hasSize(1);
        assertThat(ledger.balance(ACCOUNT)).isEqualTo(new AccountState(ACCOUNT, 1_000_000 - 2 * checkpointCost, 0,
                2 * checkpointCost));
    }

    /** The ledger, noting every call made on an event loop thread (where a blocking call stalls every connection on it). */
    private class EventLoopGuard implements AccountBook {
        private final AccountBook book;

        EventLoopGuard(AccountBook book) {
            this.book = book;
        }

        private void check(String call) {
            if (Context.isOnEventLoopThread()) {
                synchronized (onEventLoop) {
                    onEventLoop.add(call + " on " + Thread.currentThread().getName());
                }
            }
        }

        @Override
        public Account open(String accountId) {
            check("open");
            return book.open(accountId);
        }

        @Override
        public AccountState balance(String accountId) {
            check("balance");
            return book.balance(accountId);
        }

        @Override
        public Account account(String accountId) {
            check("account");
            return book.account(accountId);
        }

        @Override
        public Optional<Account> accountByDepositComment(String depositComment) {
            check("accountByDepositComment");
            return book.accountByDepositComment(depositComment);
        }

        @Override
        public boolean credit(String accountId, long amountNanoton, String reference) {
            check("credit");
            return book.credit(accountId, amountNanoton, reference);
        }

        @Override
        public boolean creditOnce(String accountId, long amountNanoton, String reference) {
            check("creditOnce");
            return book.creditOnce(accountId, amountNanoton, reference);
        }

        @Override
        public Reservation reserve(String accountId, long amountNanoton, ReservationLabel label) {
            check("reserve");
            return book.reserve(accountId, amountNanoton, label);
        }

        @Override
        public Settlement settle(Reservation reservation, long actualCostNanoton) {
            check("settle");
            return book.settle(reservation, actualCostNanoton);
        }

        @Override
        public Settlement settle(Reservation reservation, RequestRecord request) {
            check("settle");
            return book.settle(reservation, request);
        }

        @Override
        public Optional<BilledRequest> request(String accountId, String requestId) {
            check("request");
            return book.request(accountId, requestId);
        }

        @Override
        public Settlement release(Reservation reservation) {
            check("release");
            return book.release(reservation);
        }

        @Override
        public boolean recordProgress(Reservation reservation, long costSoFarNanoton) {
            check("recordProgress");
            return book.recordProgress(reservation, costSoFarNanoton);
        }

        @Override
        public void recordProgress(Map<Reservation, Long> progress) {
            check("recordProgress (batch)");
            book.recordProgress(progress);
        }

        @Override
        public void recordProgress(Map<Reservation, Long> progress, Map<Reservation, WorkerShare> shares) {
            check("recordProgress (batch)");
            book.recordProgress(progress, shares);
        }

        @Override
        public List<RecoveredReservation> recoverOpenReservations() {
            check("recoverOpenReservations");
            return book.recoverOpenReservations();
        }
    }
}
