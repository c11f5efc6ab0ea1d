package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ACCOUNT;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.gateway.api.CompletionsHandler;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.Test;

/**
 * One gateway and its account on the durable ledger: {@code GET /v1/account} (its totals, how to
 * deposit, 401 for a bad key, a stream's hold as reserved), 402 with nothing reserved, streamed
 * requests debited exactly their priced usage and audited, per-token payments that never run ahead
 * of a slow ledger, and a checkpoint charged even when the final usage is lower, across a restart.
 * Apart from {@link DurableBillingClusterContract} because these are about one gateway's billing and
 * account, whatever the ledger's leases: no second gateway id, sweeper or successor takes part.
 */
abstract class DurableBillingOneGatewayContract extends DurableBillingFixture {
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
}
