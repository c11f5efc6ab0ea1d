package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import ch.qos.logback.classic.Level;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.cocoonjvm.billing.chain.ChainTransaction;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.InMemoryChannelJournal;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.OnChainSettlement;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

/**
 * The cooperative close a worker asks for when its earnings pass its close threshold, and the
 * channel that replaces it. A class of its own because this is the close that happens by itself
 * in production, again and again for each worker: it must pay out to the nanoTON, keep the worker
 * serving while the old channel drains (or drain it cleanly when the gateway cannot fund the
 * next), and never leave a running stream unpaid.
 */
class OnChainThresholdCloseTest extends OnChainChannelFixture {
    @Test
    void fullCycle_openOnRegistration_streamedStates_cooperativeCloseAtTheThreshold_payoutToTheNanoton_thenReopen(
            @TempDir Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        InMemoryChannelJournal journal = new InMemoryChannelJournal();
        PaymentOptions payments = new PaymentOptions(true, 1, 50, DEPOSIT);
        ChannelOnChain gatewayChain = new ChannelOnChain(chain.client(), gatewayWallet, Duration.ofSeconds(60),
                Duration.ofSeconds(30));
        net = new TestNetwork(payments, gatewayChain, FEE_PER_TOKEN, journal);
        WorkerPaymentOptions workerPayments = new WorkerPaymentOptions(paymentDir, payout.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000);
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                workerPayments, new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));

        // Registered only once the contract is OPEN: the worker read it before accepting.
        JsonObject channel = onlyChannel(worker);
        Address contract = Address.of(channel.getString("channel_address"));
        ChannelData onChain = ChannelData.read(chain.client(), contract);
        assertThat(onChain.status()).isEqualTo(ChannelStatus.OPEN);
        assertThat(onChain.channelId()).isEqualTo(ChannelId.fromHex(channel.getString("channel_id")));
        assertThat(onChain.keyA()).isEqualTo(net.gateway.payments().publicKey());
        assertThat(onChain.addressA()).isEqualTo(gatewayWallet.address());
        assertThat(onChain.addressB()).isEqualTo(payout.address());
        assertThat(onChain.balanceA()).isEqualTo(BigInteger.valueOf(DEPOSIT));
        assertThat(channel.getLong("deposit_cap_nanoton")).isEqualTo(DEPOSIT);
        JsonObject billing = net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json()
                .getJsonArray("workers").getJsonObject(0).getJsonObject("billing");
        assertThat(Address.of(billing.getString("channel_address"))).isEqualTo(contract);
        assertThat(billing.getLong("cap_nanoton")).isEqualTo(DEPOSIT);
        // On-chain figures, none of them a chain call at the scrape (audit G, M4).
        eventually("the deposit shows in /metrics", () -> metric("cocoon_payment_channel_deposits_nanoton") == DEPOSIT);
        assertThat(metric("cocoon_payment_channels_opened_total")).isEqualTo(1);
        assertThat(metric("cocoon_payment_channels_closed_total{close=\"cooperative\"}")).isZero();
        BigInteger contractBefore = chain.client().balance(contract);
        BigInteger payoutBefore = payout.balance();

        // Streams until the worker's earnings pass the threshold; it then asks for the close.
        long earned = 0;
        while (earned < THRESHOLD) {
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":40"));
            assertThat(reply.status()).isEqualTo(200);
            JsonObject usage = new JsonObject(reply.body()).getJsonObject("usage");
            earned += FEE_PER_TOKEN * (usage.getLong("prompt_tokens") + usage.getLong("completion_tokens"));
            if (earned < THRESHOLD) {
                assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.OPEN);
            }
        }
        String closedId = channel.getString("channel_id");
        eventually("the worker closed channel " + closedId + " on chain",
                () -> channelById(worker, closedId).getBoolean("closed_on_chain"));
        JsonObject closed = channelById(worker, closedId);
        long paid = closed.getLong("sent_nanoton");
        assertThat(paid).isGreaterThanOrEqualTo(THRESHOLD).isLessThanOrEqualTo(earned);

        // The payout address got exactly what the last state paid, less the forwarding fee the
        // chain's config prices; the gateway got the rest of the deposit and the unused reserve.
        ChannelCosts costs = new ChannelCosts(FeeSchedule.read(chain.client()));
        ChainTransaction toB = newest(payout.address());
        assertThat(Address.of(toB.inMessage().orElseThrow().source())).isEqualTo(contract);
        BigInteger arrivedB = toB.inMessage().orElseThrow().valueNanoton();
        assertThat(arrivedB).isEqualTo(BigInteger.valueOf(paid).subtract(costs.payoutForwardFee()));
        assertThat(payout.balance().subtract(payoutBefore)).isEqualTo(arrivedB.subtract(toB.feeNanoton()));
        // (The gateway may already have opened the worker's next channel: look for the payout.)
        BigInteger arrivedA = chain.client().transactions(gatewayWallet.address(), 10, Optional.empty()).stream()
                .flatMap(tx -> tx.inMessage().stream())
                .filter(m -> !m.source().isEmpty() && Address.of(m.source()).equals(contract))
                .findFirst().orElseThrow().valueNanoton();
        assertThat(arrivedA).isGreaterThan(BigInteger.valueOf(DEPOSIT - paid))
                .isLessThan(contractBefore.subtract(BigInteger.valueOf(paid)));
        assertThat(chain.client().balance(contract)).isZero();
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);

        // The worker reconnects and is paid over a new channel, opened on chain as before.
        eventually("a new channel is open", () -> net.workerStatus(worker).getJsonArray("channels").size() == 2);
        JsonObject reopened = net.workerStatus(worker).getJsonArray("channels").stream()
                .map(JsonObject.class::cast).filter(c -> !c.getString("channel_id").equals(closedId))
                .findFirst().orElseThrow();
        assertThat(ChannelData.read(chain.client(), Address.of(reopened.getString("channel_address"))).status())
                .isEqualTo(ChannelStatus.OPEN);
        eventually("the closed channel's deposit gone, the new one's counted",
                () -> metric("cocoon_payment_channel_deposits_nanoton") == DEPOSIT);
        assertThat(metric("cocoon_payment_channels_opened_total")).isEqualTo(2);
        assertThat(metric("cocoon_payment_channels_closed_total{close=\"cooperative\"}")).isEqualTo(1);

        // The owner's history says where the close paid and what arrived there, each address in the
        // owner's one form: user-friendly beside raw, the payout address given raw (audit P, P-7).
        JsonObject earnings = net.workerJson(worker, "/earnings");
        JsonObject history = earnings.getJsonArray("channels").getJsonObject(0);  // oldest first
        assertThat(history.getString("channel_id")).isEqualTo(closedId);
        assertThat(history.getString("channel_address")).isEqualTo(contract.toBounceable());
        assertThat(history.getString("channel_address_raw")).isEqualTo(contract.toRaw());
        assertThat(history.getString("payout_address")).isEqualTo(payout.address().toNonBounceable());
        assertThat(history.getString("payout_address_raw")).isEqualTo(payout.address().toRaw());
        assertThat(history.getLong("paid_out_nanoton")).isEqualTo(paid);
        assertThat(history.getLong("received_nanoton")).isEqualTo(arrivedB.longValueExact());
        JsonObject status = net.workerStatus(worker);
        assertThat(status.getString("payout_address")).isEqualTo(payout.address().toNonBounceable());
        assertThat(status.getString("payout_address_raw")).isEqualTo(payout.address().toRaw());
        assertThat(channelById(worker, closedId).getString("channel_address")).isEqualTo(contract.toBounceable());
        assertThat(channelById(worker, closedId).getString("channel_address_raw")).isEqualTo(contract.toRaw());

        // The operator's view keeps what the closed channel paid beside the new channel's billing,
        // which starts from 0, and it reconciles with the worker's lifetime (audit P, P-8).
        JsonObject lifetime = adminWorkers().getJsonObject(0).getJsonObject("billing").getJsonObject("lifetime");
        assertThat(lifetime).isEqualTo(new JsonObject().put("channels", 2).put("closed_channels", 1)
                .put("sent_nanoton", paid).put("paid_out_nanoton", paid));
        assertThat(lifetime.getLong("sent_nanoton")).isEqualTo(earnings.getLong("earned_nanoton"));
        assertThat(lifetime.getLong("paid_out_nanoton")).isEqualTo(earnings.getLong("paid_out_nanoton"));

        // A restarted gateway reads it from its journal.
        net.close();
        net = new TestNetwork(payments, gatewayChain, FEE_PER_TOKEN, journal);
        net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000, workerPayments,
                new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));
        assertThat(adminWorkers().getJsonObject(0).getJsonObject("billing").getJsonObject("lifetime")).isEqualTo(lifetime);
    }

    @Test
    void aThresholdAboveTheCap_closesAWindowBelowTheCap_andRequestsKeepSucceedingOnNewChannels() {
        long cap = 30_000_000L;
        long window = 100 * FEE_PER_TOKEN;
        ChainWallet payout = onChainGatewayAndPayout(cap);
        WorkerNode worker;
        List<String> warnings;
        try (LogCapture log = new LogCapture(WorkerPayments.class)) {
            worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                    new WorkerPaymentOptions(null, payout.address().toRaw(), window, 10_000),
                    new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
            warnings = log.linesAt(Level.WARN);
        }
        String first = onlyChannel(worker).getString("channel_id");
        assertThat(warnings).singleElement().asString().contains(first, "holds at most " + cap,
                "owes " + (cap - window), "--close-threshold-nanoton " + DEPOSIT);
        BigInteger payoutBefore = payout.balance();

        // Twice the cap: without the early close, the worker is wedged once its earnings pass
        // cap + window, and each request after that waits out the 10 s payment timeout and fails.
        long earned = 0;
        while (earned < 2 * cap) {
            // No pause at the closes: each next channel is opened before the one it replaces closes.
            long start = System.nanoTime();
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":40"));
            assertThat(reply.status()).as(reply.body()).isEqualTo(200);
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
            JsonObject usage = new JsonObject(reply.body()).getJsonObject("usage");
            earned += FEE_PER_TOKEN * (usage.getLong("prompt_tokens") + usage.getLong("completion_tokens"));
        }
        eventually("the first channel is closed on chain", 10_000, () -> channelById(worker, first).getBoolean("closed_on_chain"));
        assertThat(channelById(worker, first).getLong("sent_nanoton")).isBetween(cap - window, cap);
        assertThat(net.workerStatus(worker).getJsonArray("channels").size()).isGreaterThanOrEqualTo(2);
        assertThat(payout.balance()).isGreaterThan(payoutBefore);
    }

    /**
     * The worker's earnings pass its close threshold while a long stream runs on the channel: the
     * gateway opens the worker's next channel on chain and offers it; once the worker accepts it,
     * new requests are paid over it while the stream finishes on the old one, and then the old one's
     * close is signed. So the worker takes requests throughout (it used to get none from the close
     * until its next session: with one worker, clients got 503s for the whole drain), the stream
     * gets every token, and the first channel's payout covers exactly its tokens. The close used to
     * be signed at once: the stream ran on unpaid until the worker's credit window held it, and was
     * cut with payment_overdue (audit G, H2).
     */
    @Test
    void aThresholdCloseWhileAStreamRuns_theNextChannelServesMeanwhile_andThePayoutCoversEveryToken() {
        ChainWallet payout = onChainGatewayAndPayout(DEPOSIT);
        WorkerNode worker = thresholdWorker(payout);
        JsonObject first = onlyChannel(worker);
        String firstId = first.getString("channel_id");
        Address contract = Address.of(first.getString("channel_address"));

        // Past the threshold (100 tokens' fees) within the first second, then as long again.
        Future<TestNetwork.Reply> running = longReply();
        eventually("the worker is paid over its next channel", () -> !paidOver().equals(firstId));
        JsonObject admin = net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json();
        assertThat(admin.getJsonArray("closing_channels")).singleElement()
                .satisfies(c -> assertThat(((JsonObject) c).getString("channel_id")).isEqualTo(firstId));
        assertThat(admin.getJsonArray("workers").getJsonObject(0).getBoolean("channel_closing")).isFalse();
        TestNetwork.Reply meanwhile = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));
        assertThat(meanwhile.status()).as(meanwhile.body()).isEqualTo(200);

        TestNetwork.Reply reply = TestNetwork.await(running);
        assertThat(reply.status()).as(reply.body()).isEqualTo(200);
        long served = fees(reply);
        assertThat(reply.json().getJsonObject("usage").getLong("completion_tokens")).isEqualTo(400);
        eventually("the channel is closed on chain", 10_000, () -> channelById(worker, firstId).getBoolean("closed_on_chain"));
        JsonObject closed = channelById(worker, firstId);
        assertThat(closed.getLong("sent_nanoton")).isEqualTo(served);
        assertThat(closed.getLong("unpaid_nanoton")).isZero();
        assertPaidOut(payout, contract, served);
        String nextId = paidOver();
        // Paid in the same rounds as the first channel's stream: the worker verifies each channel's newest state.
        eventually("the next channel pays the request it served", 10_000,
                () -> channelById(worker, nextId).getLong("sent_nanoton") == fees(meanwhile));
        assertThat(net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json()
                .getJsonArray("closing_channels")).isEmpty();
    }

    /**
     * The same threshold close when the gateway's wallet cannot fund the next channel: the close
     * goes on without one. The gateway routes no new request to the worker (a 503 saying so, as it
     * is the only one), lets the stream finish, pays it, and signs the close; the worker's next
     * session opens its next channel, with the deposit the close gave back.
     */
    @Test
    void aThresholdCloseWithoutMoneyForTheNextChannel_drainsTheWorker_andItsNextSessionGetsOne() {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(DEPOSIT + DEPOSIT / 2));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, DEPOSIT),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN);
        WorkerNode worker = thresholdWorker(payout);
        JsonObject first = onlyChannel(worker);
        String firstId = first.getString("channel_id");
        Address contract = Address.of(first.getString("channel_address"));

        Future<TestNetwork.Reply> running = longReply();
        eventually("the worker asked to close its channel", () -> adminWorkers().getJsonObject(0).getBoolean("channel_closing"));
        TestNetwork.Reply meanwhile = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));
        assertThat(meanwhile.status()).as(meanwhile.body()).isEqualTo(503);
        assertThat(meanwhile.json().getJsonObject("error").getString("message")).contains("settling a payment channel");
        assertThat(meanwhile.response().getHeader("Retry-After")).isEqualTo("1");

        TestNetwork.Reply reply = TestNetwork.await(running);
        assertThat(reply.status()).as(reply.body()).isEqualTo(200);
        long served = fees(reply);
        eventually("the channel is closed on chain", 10_000, () -> channelById(worker, firstId).getBoolean("closed_on_chain"));
        assertThat(channelById(worker, firstId).getLong("sent_nanoton")).isEqualTo(served);
        assertPaidOut(payout, contract, served);

        eventually("served on the next channel", 10_000, () -> net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5")).status() == 200);
        assertThat(paidOver()).isNotEqualTo(firstId);
        assertThat(adminWorkers().getJsonObject(0).getBoolean("channel_closing")).isFalse();
    }

    /** 200 tokens a second, replies run to max_tokens; a credit window of 20 tokens' fees; closes at {@link #THRESHOLD}. */
    private WorkerNode thresholdWorker(ChainWallet payout) {
        return net.addWorker(new SyntheticEngine(200, 16, 4096, 1_000), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(null, payout.address().toRaw(), 20 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));
    }

    /** A 400-token answer: past the threshold within its first second, then as long again. */
    private Future<TestNetwork.Reply> longReply() {
        // The body read on the client context, as the response comes.
        return net.reply(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, "\"max_tokens\":400"));
    }

    private static long fees(TestNetwork.Reply reply) {
        JsonObject usage = reply.json().getJsonObject("usage");
        return FEE_PER_TOKEN * (usage.getLong("prompt_tokens") + usage.getLong("completion_tokens"));
    }

    /** The channel the only worker's new requests are paid over. */
    private String paidOver() {
        return adminWorkers().getJsonObject(0).getJsonObject("billing").getString("channel_id");
    }
}
