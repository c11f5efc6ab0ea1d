package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import ch.qos.logback.classic.Level;
import com.google.protobuf.ByteString;
import com.iwebpp.crypto.TweetNaclFast;
import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.math.BigInteger;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.LongUnaryOperator;
import java.util.function.Predicate;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainTransaction;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.chain.LocalChain;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.chain.QuarantinedState;
import org.cocoonjvm.billing.chain.TestChain;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.InMemoryChannelJournal;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.grpc.ChannelClosingOnChain;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.cocoonjvm.protocol.grpc.GatewayGrpcClient;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.OnChainSettlement;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * A real gateway and a real worker on loopback, paid through the official channel contract on the
 * @ton/sandbox emulator (skipped without Node.js and chain-emulator/node_modules, except under
 * CI=true). Prices are 2 and 1 nanoTON a token, so the worker earns one nanoTON per token.
 */
class OnChainChannelTest {
    private static final Path EMULATOR = Path.of("../ton-billing/chain-emulator");
    private static final long DEPOSIT = 1_000_000_000L;
    /** 0.0001 TON a token: some hundred tokens pass the threshold. */
    private static final long FEE_PER_TOKEN = 100_000L;
    /** 0.01 TON, above the ~0.007 TON a close costs. */
    private static final long THRESHOLD = 10_000_000L;
    private static final Duration QUARANTINE = Duration.ofSeconds(60);
    private static final Duration CONDITIONAL_CLOSE = Duration.ofSeconds(30);

    private static LocalChain chain;
    private TestNetwork net;

    @BeforeAll
    static void startChain() {
        chain = TestChain.startOrSkip(EMULATOR);
    }

    @AfterAll
    static void stopChain() {
        if (chain != null) {
            chain.close();
        }
    }

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
    }

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

    /** The value of one series in the gateway's {@code /metrics}. */
    private double metric(String series) {
        return net.call(HttpMethod.GET, "/metrics", null, null).body().lines().filter(l -> l.startsWith(series + " "))
                .mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1))).findFirst()
                .orElseThrow(() -> new AssertionError("no " + series + " in /metrics"));
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
        return net.request(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, "\"max_tokens\":400"))
                .compose(r -> r.body().map(b -> new TestNetwork.Reply(r.statusCode(), b.toString(), r)));
    }

    private static long fees(TestNetwork.Reply reply) {
        JsonObject usage = reply.json().getJsonObject("usage");
        return FEE_PER_TOKEN * (usage.getLong("prompt_tokens") + usage.getLong("completion_tokens"));
    }

    /** The channel the only worker's new requests are paid over. */
    private String paidOver() {
        return adminWorkers().getJsonObject(0).getJsonObject("billing").getString("channel_id");
    }

    /**
     * A gateway stopped while a channel drains: its grace cuts the stream, and the close is either
     * signed and sent before the sessions close (the worker then settles it on chain) or dropped
     * with the channel still open in the journal, for the worker's next session. It used to be
     * signed after the session had ended: sent to nobody, and recorded closed, so the contract
     * stayed open on chain with the worker's earnings in it and no gateway to close it with
     * (audit K, K-1).
     */
    @Test
    void aGatewayStoppedDuringADrain_neitherLosesNorStrandsTheChannel() {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        InMemoryChannelJournal journal = new InMemoryChannelJournal();
        net = new TestNetwork(new PaymentOptions(true, 1, 50, DEPOSIT),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN, journal);
        // 100 tokens a second: the 1,000-token reply outlasts the stopping gateway's 6 s grace.
        WorkerNode worker = net.addWorker(new SyntheticEngine(100, 16, 4096, 1_000), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(null, payout.address().toRaw(), 20 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));
        String id = onlyChannel(worker).getString("channel_id");
        net.request(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", true, "\"max_tokens\":1000"));
        eventually("the channel drains, replaced", () -> !net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY,
                null).json().getJsonArray("closing_channels").isEmpty());

        TestNetwork.await(net.stopGateway());

        eventually("the channel is closed on chain, or still open in the journal", 10_000,
                () -> channelById(worker, id).getBoolean("closed_on_chain")
                        || journal.openChannels().stream().anyMatch(e -> e.channelId().hex().equals(id)));
    }

    private JsonArray adminWorkers() {
        return net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json().getJsonArray("workers");
    }

    @Test
    void aStoppingWorker_closesItsChannelCooperatively_beforeLeaving_andThePayoutArrives() {
        ChainWallet payout = onChainGatewayAndPayout(DEPOSIT);
        // The threshold is out of reach: only the shutdown closes this channel.
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(null, payout.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        Address contract = Address.of(onlyChannel(worker).getString("channel_address"));
        // Well above dust (~0.007 TON), so the close is worth its cost.
        long owed = streamUntilThePaidStateHolds(worker, contract, 2 * THRESHOLD);

        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            net.stopWorker(0);

            // Closed before the worker's stop returned: no waiting, no quarantine.
            assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);
            assertPaidOut(payout, contract, owed);
            assertLoggedPayout(workerLog, "closed channel ", contract, payout, owed);
        }
    }

    /**
     * The worker's line for a payout says what leaves the contract and what arrives: it said
     * "N nanoTON paid out" while N less the forwarding fee arrived (audit G, M4).
     */
    private static void assertLoggedPayout(LogCapture workerLog, String prefix, Address contract, ChainWallet payout,
                                           long owed) {
        long fee = new ChannelCosts(FeeSchedule.read(chain.client())).payoutForwardFee().longValueExact();
        assertThat(workerLog.linesAt(Level.INFO)).filteredOn(l -> l.contains(prefix)).singleElement().asString()
                .contains(contract.toRaw() + ": " + owed + " nanoTON leave the contract for " + payout.address().toNonBounceable()
                        + ", " + (owed - fee) + " arrive there (the chain's forwarding fee of " + fee + " is deducted");
    }

    /**
     * Stopped while a stream runs: the stream finishes within the grace, and only then is the
     * channel closed, so the payout covers its tokens too (the close used to come first, and the
     * tokens of the grace were billed to the client and never paid).
     */
    @Test
    void aStoppingWorker_closesItsChannelAfterItsRunningStream_andThePayoutCoversEveryTokenServed() {
        ChainWallet payout = onChainGatewayAndPayout(DEPOSIT);
        // Replies run to max_tokens: the stream lasts 1.5 s at 200 tokens a second.
        WorkerNode worker = net.addWorker(new SyntheticEngine(200, 16, 4096, 1_000), SchedulerOptions.DEFAULTS, 5_000,
                new WorkerPaymentOptions(null, payout.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        Address contract = Address.of(onlyChannel(worker).getString("channel_address"));
        long owed = streamUntilThePaidStateHolds(worker, contract, 2 * THRESHOLD);
        Future<TestNetwork.Reply> running = net.request(TestNetwork.post("/v1/chat/completions", API_KEY),
                        chat("synthetic", false, "\"max_tokens\":300"))
                .compose(r -> r.body().map(b -> new TestNetwork.Reply(r.statusCode(), b.toString(), r)));
        eventually("the stream is running", () -> onlyChannel(worker).getLong("sent_nanoton") > owed);

        net.stopWorker(0);

        TestNetwork.Reply reply = TestNetwork.await(running);
        assertThat(reply.status()).as(reply.body()).isEqualTo(200);
        JsonObject usage = new JsonObject(reply.body()).getJsonObject("usage");
        assertThat(usage.getLong("completion_tokens")).isEqualTo(300);
        long served = owed + FEE_PER_TOKEN * (usage.getLong("prompt_tokens") + usage.getLong("completion_tokens"));
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);
        assertPaidOut(payout, contract, served);
    }

    /**
     * Audit G, M4: a restarted gateway showed an open channel in {@code absent_channels} (and the
     * absent gauge) only once its worker came back. It shows every channel its journal holds
     * from the start, with the last state and the contract; the worker then takes the same channel
     * up again, and is paid on top of that state, each fee once.
     */
    @Test
    void aRestartedGateway_showsItsJournaledChannelsFromTheStart_andTheirWorkerTakesThemUpAgain(@TempDir Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        InMemoryChannelJournal journal = new InMemoryChannelJournal();
        PaymentOptions payments = new PaymentOptions(true, 1, 50, DEPOSIT);
        WorkerPaymentOptions workerPayments = new WorkerPaymentOptions(paymentDir, payout.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000);
        net = new TestNetwork(payments, new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE),
                FEE_PER_TOKEN, journal);
        // The threshold is out of reach, and a stop closes nothing below dust: the channel stays open.
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                workerPayments, new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        JsonObject channel = onlyChannel(worker);
        TestNetwork.Reply first = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));
        assertThat(first.status()).isEqualTo(200);
        long paid = FEE_PER_TOKEN * tokens(first);
        eventually("the worker holds a state for " + paid, () -> onlyChannel(worker).getLong("sent_nanoton") == paid);
        net.close();
        BigInteger walletBefore = gatewayWallet.balance();

        net = new TestNetwork(payments, new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE),
                FEE_PER_TOKEN, journal);

        JsonObject admin = net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json();
        assertThat(admin.getJsonArray("workers")).isEmpty();
        JsonObject absent = admin.getJsonArray("absent_channels").getJsonObject(0);
        assertThat(admin.getJsonArray("absent_channels")).hasSize(1);
        assertThat(absent.getString("channel_id")).isEqualTo(channel.getString("channel_id"));
        assertThat(absent.getLong("sent_nanoton")).isEqualTo(paid);
        assertThat(absent.getLong("unpaid_nanoton")).isZero();
        assertThat(Address.of(absent.getString("channel_address"))).isEqualTo(Address.of(channel.getString("channel_address")));
        assertThat(absent.getString("worker_key")).hasSize(64);
        assertThat(absent.getBoolean("session")).isFalse();
        assertThat(metric("cocoon_payment_channels_absent")).isEqualTo(1);
        assertThat(metric("cocoon_payment_channel_deposits_nanoton")).isEqualTo(DEPOSIT);

        WorkerNode back = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                workerPayments, new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        assertThat(onlyChannel(back).getString("channel_id")).isEqualTo(channel.getString("channel_id"));
        TestNetwork.Reply second = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));
        assertThat(second.status()).isEqualTo(200);
        long total = paid + FEE_PER_TOKEN * tokens(second);
        eventually("the worker holds a state for " + total, () -> onlyChannel(back).getLong("sent_nanoton") == total);
        admin = net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json();
        assertThat(admin.getJsonArray("absent_channels")).isEmpty();
        JsonObject billing = admin.getJsonArray("workers").getJsonObject(0).getJsonObject("billing");
        assertThat(billing.getLong("owed_nanoton")).as("each fee once").isEqualTo(total);
        assertThat(billing.getLong("sent_nanoton")).isEqualTo(total);
        assertThat(onlyChannel(back).getLong("unpaid_nanoton")).isZero();
        assertThat(gatewayWallet.balance()).as("the same contract: nothing deployed or funded again").isEqualTo(walletBefore);
        assertThat(metric("cocoon_payment_channels_opened_total")).as("a channel taken up again is not new").isZero();
    }

    /**
     * An operator changes {@code --channel-cap-nanoton} between restarts. A channel open on chain
     * holds what its contract was funded with, whatever the setting is now: the gateway used to
     * refuse one funded with less (channel_underfunded, at every try of its worker), and to offer
     * one funded with more at the new cap, which its worker refused as changed terms. Each is
     * taken up at its deposit; a cooperative close pays the worker all its last state holds; the
     * next channel is funded at the cap set now.
     */
    @Test
    void aGatewayRestartedWithAnotherCap_takesEachOpenChannelUpAtItsDeposit_andFundsTheNextAtTheNewCap(
            @TempDir Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        InMemoryChannelJournal journal = new InMemoryChannelJournal();
        WorkerPaymentOptions workerPayments = new WorkerPaymentOptions(paymentDir, payout.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000);
        long[] caps = {DEPOSIT, 2 * DEPOSIT, DEPOSIT / 2};
        long owed = 0;
        Address contract = null;
        WorkerNode worker = null;
        for (int restart = 0; restart < caps.length; restart++) {
            if (net != null) {
                net.close();
            }
            BigInteger walletBefore = gatewayWallet.balance();
            net = new TestNetwork(new PaymentOptions(true, 1, 50, caps[restart]),
                    new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN, journal);
            if (restart > 0) {
                // Before its worker is back, the channel shows what its contract holds (review AA, AA-7).
                eventually("the journal's channel shows its deposit", 10_000, () -> net.call(HttpMethod.GET,
                        "/admin/workers", TestNetwork.ADMIN_KEY, null).json().getJsonArray("absent_channels")
                        .getJsonObject(0).getLong("cap_nanoton") == DEPOSIT);
                assertThat(metric("cocoon_payment_channel_deposits_nanoton")).isEqualTo(DEPOSIT);
            }
            // The threshold is out of reach until the last restart, where the worker closes.
            boolean last = restart == caps.length - 1;
            worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000, workerPayments,
                    new OnChainSettlement(chain.client(), last ? owed + THRESHOLD : DEPOSIT, Clock.systemUTC()));
            JsonObject channel = onlyChannel(worker);
            contract = Address.of(channel.getString("channel_address"));
            assertThat(channel.getLong("deposit_cap_nanoton")).isEqualTo(DEPOSIT);
            assertThat(adminWorkers().getJsonObject(0).getJsonObject("billing").getLong("cap_nanoton")).isEqualTo(DEPOSIT);
            if (restart > 0) {
                assertThat(gatewayWallet.balance()).as("the same contract: nothing funded again").isEqualTo(walletBefore);
            }
            if (!last) {
                // Below dust: the worker's stop closes nothing.
                TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                        chat("synthetic", false, "\"max_tokens\":5"));
                assertThat(reply.status()).as(reply.body()).isEqualTo(200);
                long total = owed + FEE_PER_TOKEN * tokens(reply);
                WorkerNode paid = worker;
                eventually("the worker holds a state for " + total, () -> onlyChannel(paid).getLong("sent_nanoton") == total);
                owed = total;
            }
        }
        WorkerNode closing = worker;
        String closedId = onlyChannel(closing).getString("channel_id");
        BigInteger payoutBefore = payout.balance();
        long earned = owed;
        while (earned < owed + THRESHOLD) {
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":40"));
            assertThat(reply.status()).as(reply.body()).isEqualTo(200);
            earned += FEE_PER_TOKEN * tokens(reply);
        }
        eventually("the worker closed channel " + closedId + " on chain",
                () -> channelById(closing, closedId).getBoolean("closed_on_chain"));
        long paid = channelById(closing, closedId).getLong("sent_nanoton");
        assertThat(paid).isGreaterThanOrEqualTo(owed + THRESHOLD).isLessThanOrEqualTo(earned);
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);
        ChannelCosts costs = new ChannelCosts(FeeSchedule.read(chain.client()));
        ChainTransaction toB = newest(payout.address());
        assertThat(Address.of(toB.inMessage().orElseThrow().source())).isEqualTo(contract);
        assertThat(toB.inMessage().orElseThrow().valueNanoton()).isEqualTo(BigInteger.valueOf(paid).subtract(costs.payoutForwardFee()));
        assertThat(payout.balance()).isGreaterThan(payoutBefore);

        eventually("a new channel is open", () -> net.workerStatus(closing).getJsonArray("channels").stream()
                .map(JsonObject.class::cast).anyMatch(c -> !c.getString("channel_id").equals(closedId)));
        JsonObject next = net.workerStatus(closing).getJsonArray("channels").stream().map(JsonObject.class::cast)
                .filter(c -> !c.getString("channel_id").equals(closedId)).findFirst().orElseThrow();
        assertThat(next.getLong("deposit_cap_nanoton")).isEqualTo(DEPOSIT / 2);
        assertThat(ChannelData.read(chain.client(), Address.of(next.getString("channel_address"))).balanceA())
                .isEqualTo(BigInteger.valueOf(DEPOSIT / 2));
    }

    /**
     * A CloseSigned written as the connection broke never reaches the worker, while the gateway has
     * recorded the channel closed: the contract stays open, the worker's earnings and the gateway's
     * deposit in it. The worker asks again on a later session (the channel is no longer its current
     * one) and gets the same close signed again, which settles the channel. That request used to be
     * refused as naming no open channel, ending the session.
     */
    @Test
    void aCloseSignedThatNeverArrived_isSignedAgainWhenTheWorkerAsks_andSettlesTheChannel(@TempDir Path paymentDir) {
        ChainWallet payout = onChainGatewayAndPayout(DEPOSIT);
        WorkerPaymentOptions keepsItsKey = new WorkerPaymentOptions(paymentDir, payout.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000);
        // The threshold is out of reach, and a stop closes nothing below dust: the channel stays open.
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                keepsItsKey, new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        JsonObject channel = onlyChannel(worker);
        Address contract = Address.of(channel.getString("channel_address"));
        long paid = FEE_PER_TOKEN * tokens(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5")));
        eventually("the worker holds a state for " + paid, () -> onlyChannel(worker).getLong("sent_nanoton") == paid);
        CloseRequest close = CloseRequest.newBuilder().setSeqnoB(1).setSignedStateBoc(ByteString.copyFrom(
                Base64.getDecoder().decode(onlyChannel(worker).getString("signed_state_boc")))).build();
        net.stopWorker(0);
        WorkerPayments sameKey = new WorkerPayments(keepsItsKey, new OnChainSettlement(chain.client(), DEPOSIT,
                Clock.systemUTC()));

        RawSession lost = RawSession.register(net, sameKey);
        assertThat(lost.channelId()).isEqualTo(channel.getString("channel_id"));
        lost.call().write(WorkerMessage.newBuilder().setCloseRequest(close).build());
        CloseSigned first = lost.await(GatewayMessage::hasCloseSigned).getCloseSigned();
        lost.call().cancel();  // as if it never arrived

        RawSession again = RawSession.register(net, sameKey);
        assertThat(again.channelId()).as("a new channel: the journal has the first closed").isNotEqualTo(lost.channelId());
        again.call().write(WorkerMessage.newBuilder().setCloseRequest(close).build());
        assertThat(again.await(GatewayMessage::hasCloseSigned).getCloseSigned()).isEqualTo(first);
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.OPEN);

        sameKey.closeSigned(first);
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);
        assertPaidOut(payout, contract, paid);
        assertThat(metric("cocoon_payment_channels_closed_total{close=\"cooperative\"}")).as("counted once").isEqualTo(1);
        // Ended as a worker's stop ends it: the test's gRPC client shares the gateway's Vert.x, whose close
        // would wait for the open stream (and so time out) before the gateway began to stop.
        again.call().cancel();
    }

    /**
     * A worker stopped while its replaced channel drains (the audit killed it; a stop strands it
     * the same way): the gateway signed that channel's close as the session ended and never sent
     * it. The worker restarted on the same payment dir asks for it after its next registration,
     * though no gateway offers a replaced channel again, and settles it: the owner's earnings in it
     * used to stay in the contract for good, shown as open (audit P, P-1).
     */
    @Test
    void aChannelReplacedWhenItsWorkerStopped_isClosedByTheRestartedWorker(@TempDir Path paymentDir) {
        ChainWallet payout = onChainGatewayAndPayout(DEPOSIT);
        WorkerPaymentOptions keepsItsKey = new WorkerPaymentOptions(paymentDir, payout.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000);
        // 100 tokens a second: the reply outlasts the drain, and the stop cuts it.
        WorkerNode first = net.addWorker(new SyntheticEngine(100, 16, 4096, 1_000), SchedulerOptions.DEFAULTS, 500,
                keepsItsKey, new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));
        String replaced = onlyChannel(first).getString("channel_id");
        net.request(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", true, "\"max_tokens\":1000"));
        eventually("the channel drains, replaced", 20_000, () -> !net.call(HttpMethod.GET, "/admin/workers",
                TestNetwork.ADMIN_KEY, null).json().getJsonArray("closing_channels").isEmpty());
        Address contract = Address.of(channelById(first, replaced).getString("channel_address"));
        net.stopWorker(0);
        assertThat(ChannelData.read(chain.client(), contract).status()).as("stranded by the stop").isEqualTo(ChannelStatus.OPEN);

        WorkerNode restarted = net.addWorker(new SyntheticEngine(100, 16, 4096), SchedulerOptions.DEFAULTS, 500,
                keepsItsKey, new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));

        eventually("the restarted worker closes the replaced channel on chain", 30_000,
                () -> channelById(restarted, replaced).getBoolean("closed_on_chain"));
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);
    }

    /** A worker's session driven by the test, paid through {@code payments}. */
    private record RawSession(GrpcClientRequest<WorkerMessage, GatewayMessage> call, List<GatewayMessage> received,
                              String channelId) {
        /** Says Hello with {@code payments}' key and payout address, and accepts the channel of Registered. */
        static RawSession register(TestNetwork net, WorkerPayments payments) {
            List<GatewayMessage> received = new CopyOnWriteArrayList<>();
            GrpcClientRequest<WorkerMessage, GatewayMessage> call = TestNetwork.await(GrpcClient.client(net.vertx).request(
                    SocketAddress.inetSocketAddress(net.gateway.port(), "127.0.0.1"), GatewayGrpcClient.Session));
            call.response().onSuccess(response -> response.handler(received::add));
            call.write(WorkerMessage.newBuilder().setHello(Hello.newBuilder().setWorkerId("raw").setEndpoint("http://127.0.0.1:1")
                    .setCapacity(1).addModels(ModelRef.newBuilder().setName("synthetic").setHash("00"))
                    .setPaymentPublicKey(ByteString.copyFrom(payments.publicKey().toBytes()))
                    .setPayoutAddress(payments.payoutAddress())).build());
            RawSession session = new RawSession(call, received, null);
            PaymentChannel terms = session.await(GatewayMessage::hasRegistered).getRegistered().getChannel();
            call.write(WorkerMessage.newBuilder().setChannelAccepted(payments.open(terms)).build());
            return new RawSession(call, received, ChannelId.fromBytes(terms.getChannelId().toByteArray()).hex());
        }

        GatewayMessage await(Predicate<GatewayMessage> which) {
            eventually("the gateway's message", 10_000, () -> received.stream().anyMatch(which));
            return received.stream().filter(which).findFirst().orElseThrow();
        }
    }

    private static long tokens(TestNetwork.Reply reply) {
        JsonObject usage = new JsonObject(reply.body()).getJsonObject("usage");
        return usage.getLong("prompt_tokens") + usage.getLong("completion_tokens");
    }

    /**
     * Audit G, M4: a worker restarted after its channel was closed on chain showed that channel
     * with no contract and {@code closed_on_chain} false, as if it were still open. Audit M-8: its
     * owner saw neither what it had earned before the restart nor what the close paid out.
     */
    @Test
    void aRestartedWorker_stillShowsItsClosedChannel_closedOnChain_atItsContract_andItsEarnings(@TempDir Path paymentDir) {
        ChainWallet payout = onChainGatewayAndPayout(DEPOSIT);
        WorkerPaymentOptions payments = new WorkerPaymentOptions(paymentDir, payout.address().toRaw(), 100 * FEE_PER_TOKEN,
                10_000);
        // The threshold is out of reach: only the shutdown closes this channel.
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000, payments,
                new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        String closedId = onlyChannel(worker).getString("channel_id");
        Address contract = Address.of(onlyChannel(worker).getString("channel_address"));
        long owed = streamUntilThePaidStateHolds(worker, contract, 2 * THRESHOLD);
        JsonObject served = net.workerStatus(worker).getJsonObject("load");
        net.stopWorker(0);
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);
        assertPaidOut(payout, contract, owed);

        WorkerNode restarted = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000, payments,
                new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));

        JsonObject closed = channelById(restarted, closedId);
        assertThat(closed.getBoolean("closed_on_chain")).isTrue();
        assertThat(closed.getBoolean("quarantined")).isFalse();
        assertThat(Address.of(closed.getString("channel_address"))).isEqualTo(contract);
        assertThat(closed.getLong("sent_nanoton")).isEqualTo(owed);
        JsonObject next = net.workerStatus(restarted).getJsonArray("channels").stream().map(JsonObject.class::cast)
                .filter(c -> !c.getString("channel_id").equals(closedId)).findFirst().orElseThrow();
        assertThat(next.getBoolean("closed_on_chain")).isFalse();
        assertThat(ChannelData.read(chain.client(), Address.of(next.getString("channel_address"))).status())
                .isEqualTo(ChannelStatus.OPEN);

        // The restarted worker has served nothing yet: its lifetime is what the first one saved at its stop.
        JsonObject earnings = net.workerJson(restarted, "/earnings");
        assertThat(earnings.getLong("completion_tokens")).isEqualTo(served.getLong("tokens_generated")).isPositive();
        assertThat(earnings.getLong("prompt_tokens")).isEqualTo(served.getLong("prompt_tokens")).isPositive();
        assertThat(earnings.getLong("paid_out_nanoton")).isEqualTo(owed);
        assertThat(earnings.getLong("earned_nanoton")).isEqualTo(owed);  // nothing on the new channel yet
        JsonObject totals = earnings.copy();
        totals.remove("channels");
        assertThat(net.workerStatus(restarted).getJsonObject("earnings")).isEqualTo(totals);
        JsonObject paidOut = earnings.getJsonArray("channels").getJsonObject(0);  // oldest first
        assertThat(paidOut.getString("channel_id")).isEqualTo(closedId);
        assertThat(paidOut.getString("state")).isEqualTo("closed");
        assertThat(Address.of(paidOut.getString("channel_address"))).isEqualTo(contract);
        assertThat(paidOut.getString("gateway_public_key")).isEqualTo(net.gateway.payments().publicKey().hex());
        assertThat(paidOut.getLong("earned_nanoton")).isEqualTo(owed);
        assertThat(paidOut.getLong("paid_out_nanoton")).isEqualTo(owed);
        assertThat(paidOut.getInstant("settled_at")).isAfter(paidOut.getInstant("opened_at"));
        assertThat(Base64.getDecoder().decode(paidOut.getString("close_message_hash"))).hasSize(32);
        // Kept in its file: the restarted worker was not there when it closed.
        assertThat(paidOut.getString("payout_address_raw")).isEqualTo(payout.address().toRaw());
        assertThat(paidOut.getLong("received_nanoton")).isEqualTo(owed - new ChannelCosts(FeeSchedule.read(chain.client()))
                .payoutForwardFee().longValueExact());
        JsonObject open = earnings.getJsonArray("channels").getJsonObject(1);
        assertThat(open.getString("channel_id")).isEqualTo(next.getString("channel_id"));
        assertThat(open.getString("state")).isEqualTo("open");
        assertThat(open.getLong("paid_out_nanoton")).isZero();
        assertThat(open.getValue("settled_at")).isNull();
        assertThat(open.getValue("close_message_hash")).isNull();
        assertThat(open.getValue("received_nanoton")).isNull();
        assertThat(open.getString("payout_address")).isEqualTo(payout.address().toNonBounceable());
        assertThat(earnings.getJsonArray("channels")).hasSize(2);
    }

    @Test
    void aGatewayThatIsGone_isClosedWithoutIt_afterTheQuarantine_andTheWorkerGetsItsLatestState(@TempDir Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, DEPOSIT),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN);
        // The threshold is out of reach: only the silence closes this channel.
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(paymentDir, workerWallet.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC(), workerWallet, Duration.ofSeconds(1),
                        Duration.ofSeconds(1)));
        Address contract = Address.of(onlyChannel(worker).getString("channel_address"));
        // Well above dust (~0.007 TON), so the close is worth its cost.
        long owed = streamUntilThePaidStateHolds(worker, contract, 2 * THRESHOLD);

        TestNetwork.await(net.stopGateway());
        eventually("the worker started the uncooperative close",
                () -> ChannelData.read(chain.client(), contract).status() == ChannelStatus.CLOSURE_STARTED);
        eventually("the worker waits out the quarantine", () -> onlyChannel(worker).getBoolean("quarantined"));
        assertThat(onlyChannel(worker).getBoolean("closed_on_chain")).isFalse();
        JsonObject waiting = net.workerJson(worker, "/earnings").getJsonArray("channels").getJsonObject(0);
        assertThat(waiting.getString("state")).isEqualTo("quarantined");
        assertThat(waiting.getLong("earned_nanoton")).isEqualTo(owed);
        assertThat(waiting.getLong("paid_out_nanoton")).isZero();
        assertThat(waiting.getInstant("settled_at")).isNotNull();
        assertThat(waiting.getValue("close_message_hash")).isNull();  // started from its wallet: not its close
        assertThat(waiting.getValue("received_nanoton")).isNull();

        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            chain.advanceTime(QUARANTINE.plus(CONDITIONAL_CLOSE).plusSeconds(1));
            eventually("the worker finished the close", () -> onlyChannel(worker).getBoolean("closed_on_chain"));
            assertLoggedPayout(workerLog, "finished the uncooperative close", contract, workerWallet, owed);
        }
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.UNINITED);
        ChannelCosts costs = new ChannelCosts(FeeSchedule.read(chain.client()));
        ChainTransaction paid = newest(workerWallet.address());
        assertThat(Address.of(paid.inMessage().orElseThrow().source())).isEqualTo(contract);
        assertThat(paid.inMessage().orElseThrow().valueNanoton())
                .isEqualTo(BigInteger.valueOf(owed).subtract(costs.payoutForwardFee()));
        // Finished: no longer waiting out a quarantine (both used to show true together).
        assertThat(onlyChannel(worker).getBoolean("quarantined")).isFalse();
        JsonObject earnings = net.workerJson(worker, "/earnings");
        assertThat(earnings.getLong("paid_out_nanoton")).isEqualTo(owed);
        JsonObject finished = earnings.getJsonArray("channels").getJsonObject(0);
        assertThat(finished.getString("state")).isEqualTo("closed");
        assertThat(Base64.getDecoder().decode(finished.getString("close_message_hash"))).hasSize(32);
        assertThat(finished.getLong("received_nanoton")).isEqualTo(paid.inMessage().orElseThrow().valueNanoton().longValueExact());
        assertThat(finished.getString("payout_address")).isEqualTo(workerWallet.address().toNonBounceable());

        // Restarted with its gateway still gone: the channel is known closed, and left alone.
        net.stopWorker(0);
        net.deployWorker("restarted", new WorkerPaymentOptions(paymentDir, workerWallet.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000), new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC(), workerWallet,
                Duration.ofSeconds(1), Duration.ofSeconds(1)), net.gateway.port());
        WorkerNode restarted = net.workers.get(1);
        eventually("the restarted worker serves /status", () -> {
            try {
                return onlyChannel(restarted).getBoolean("closed_on_chain");
            } catch (RuntimeException notYet) {
                return false;
            }
        });
        assertThat(onlyChannel(restarted).getBoolean("quarantined")).isFalse();
        assertThat(Address.of(onlyChannel(restarted).getString("channel_address"))).isEqualTo(contract);
    }

    /**
     * What an operator holding the gateway's payer key can do outside the gateway: start the
     * uncooperative close with an older state it signed, which paid the worker less, here while a
     * stream runs. The worker reads its channels every second here (15 s by default): the channel
     * takes no new request and its stream stops (nothing it makes from here could be paid); the
     * gateway's rounds pay what it made, and the worker answers with a state holding all of it
     * (audit Z, Z-2: it answered at once, and streamed on unpaid). Then it leaves the session and
     * is paid over a new channel (Z-3: it stayed, and was routed requests it could only refuse for
     * the whole quarantine); after the quarantine it finishes the close and is paid in full.
     */
    @Test
    void aGatewayClosingWithAnOldState_whileAStreamRuns_isAnsweredWithAllItEarned_andANewChannelServes(@TempDir Path paymentDir) {
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, workerWallet, workerWallet, null);
        Future<TestNetwork.Reply> running = paidStream(close);
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            close.start.run();
            eventually("the worker answered the close", 20_000, () -> workerLog.linesAt(Level.WARN).stream()
                    .anyMatch(l -> l.contains("answered its gateway's close")));
            assertThat(workerLog.linesAt(Level.WARN)).anySatisfy(l -> assertThat(l).contains(
                    "its gateway started an uncooperative close", "seqno " + close.old.seqno() + ", " + close.old.sentNanoton()
                            + " nanoTON (the latest it signed here: seqno ", "its running sequences stop"));
        }
        TestNetwork.Reply cut = TestNetwork.await(running);
        assertThat(cut.body()).contains("payment_overdue", "is closing on chain").doesNotContain("\"finish_reason\":\"length\"");
        JsonObject answeredChannel = channelById(close.worker, close.channelId);
        assertThat(answeredChannel.getBoolean("quarantined")).isTrue();
        long paid = answeredChannel.getLong("sent_nanoton");
        assertThat(answeredChannel.getLong("unpaid_nanoton")).as("all the channel earned is in its answer").isZero();
        JsonObject underWay = answeredChannel.getJsonObject("close");
        assertThat(underWay.getString("started_by")).isEqualTo("gateway");
        assertThat(underWay.getBoolean("answered")).isTrue();
        assertThat(underWay.getLong("pays_nanoton")).isEqualTo(paid);
        assertThat(underWay.getInstant("quarantine_ends_at")).isNotNull();
        assertThat(net.workerGet(close.worker, "/metrics").toString()).contains("cocoon_worker_channel_close_shortfall_nanoton{"
                + "channel=\"" + close.channelId + "\",started_by=\"gateway\"} 0.0");
        QuarantinedState answered = ChannelData.read(chain.client(), close.contract).quarantined().orElseThrow();
        assertThat(answered.challenged()).isTrue();
        assertThat(answered.seqnoA()).isEqualTo(answeredChannel.getLong("seqno"));
        assertThat(answered.sentA()).isEqualTo(BigInteger.valueOf(paid));

        eventually("the worker is paid over a new channel", 30_000, () -> net.workerStatus(close.worker)
                .getJsonArray("channels").stream().map(JsonObject.class::cast)
                .anyMatch(c -> !c.getString("channel_id").equals(close.channelId) && !c.getBoolean("quarantined")));
        TestNetwork.Reply served = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));
        assertThat(served.status()).as(served.body()).isEqualTo(200);

        finishAndAssertPaid(close, workerWallet, paid);
    }

    /**
     * The worker tells its gateway of the close the watch found, in the same watch: the gateway
     * routes nothing more to it over that channel while the answer waits a watch for the rounds
     * (audit Z2, N-2: every request then came back a 502 payment_required, and three of them
     * opened the worker's circuit breaker), and, having checked the close on chain, says at ERROR
     * that its payer key was used behind its back (Z-8: it noticed nothing).
     */
    @Test
    void aGatewayClosingWithAnOldState_isReportedToTheGateway_whichRoutesNothingThere_andRaisesTheAlarm(
            @TempDir Path paymentDir) {
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        // Watched every 3 s, well within the stream's 6 s: with it running, the answer, and the
        // session's end, come a watch after the close is seen.
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, workerWallet, workerWallet, null, Duration.ofSeconds(3));
        Future<TestNetwork.Reply> running = paidStream(close);
        try (LogCapture gatewayLog = new LogCapture(ChannelBilling.class);
             LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            close.start.run();
            eventually("the worker saw the close", 10_000, () -> workerLog.linesAt(Level.WARN).stream()
                    .anyMatch(l -> l.contains("its gateway started an uncooperative close")));
            eventually("the gateway routes nothing to it", 2_000, () -> adminWorkers().getJsonObject(0)
                    .getBoolean("channel_closing"));
            assertThat(workerLog.linesAt(Level.WARN)).noneMatch(l -> l.contains("answered its gateway's close"));
            JsonObject billing = adminWorkers().getJsonObject(0).getJsonObject("billing");
            assertThat(billing.getString("channel_id")).isEqualTo(close.channelId);
            assertThat(billing.getString("close_on_chain")).isEqualTo("gateway_key");
            TestNetwork.Reply meanwhile = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":5"));
            assertThat(meanwhile.status()).as(meanwhile.body()).isNotEqualTo(502);
            assertThat(meanwhile.body()).doesNotContain("payment_required");

            eventually("the gateway checked the close on chain", 10_000, () -> !gatewayLog.linesAt(Level.ERROR).isEmpty());
            assertThat(gatewayLog.linesAt(Level.ERROR)).singleElement().asString().contains("channel " + close.channelId,
                    "started on chain with this gateway's payer key, not by this gateway",
                    "seqno " + close.old.seqno() + " sending " + close.old.sentNanoton() + " nanoTON",
                    "(the latest this gateway signed: seqno ");
            assertThat(metric("cocoon_payment_channel_closes_started_outside_total")).isEqualTo(1);
        }
        assertThat(TestNetwork.await(running).body()).contains("is closing on chain");
        eventually("the worker is paid over a new channel", 30_000, () -> net.workerStatus(close.worker)
                .getJsonArray("channels").stream().map(JsonObject.class::cast)
                .anyMatch(c -> !c.getString("channel_id").equals(close.channelId) && !c.getBoolean("quarantined")));
        TestNetwork.Reply served = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));
        assertThat(served.status()).as(served.body()).isEqualTo(200);
        assertThat(adminWorkers().getJsonObject(0).getBoolean("channel_closing")).isFalse();
    }

    /**
     * A worker that first sees a stale close late in its quarantine (it was down, or its chain
     * reads failed until then), with nothing running on the channel and all it earned paid,
     * answers at once: waiting the usual watch would find the quarantine over (review AA, AA-1:
     * the contract paid the old 13.5M of the 36M the worker held).
     */
    @Test
    void aStaleCloseFirstSeenLateInItsQuarantine_isAnsweredAtOnce(@TempDir Path paymentDir) throws Exception {
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        // Watched every 10 s: an answer within 7 s of the sighting came from the watch that saw it.
        Duration watch = Duration.ofSeconds(10);
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, workerWallet, workerWallet, null, watch);
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            close.start.run();
            // 25 s of the quarantine left: the watch sees the close while it can still be answered.
            chain.advanceTime(QUARANTINE.minusSeconds(25));
            answeredInTheWatchThatSawIt(workerLog, watch);
        }
        QuarantinedState answered = ChannelData.read(chain.client(), close.contract).quarantined().orElseThrow();
        assertThat(answered.challenged()).isTrue();
        assertThat(answered.sentA()).isEqualTo(BigInteger.valueOf(close.owed));
    }

    /**
     * Seen within two watches of the quarantine's end by the worker's clock, a close is answered
     * at once even while a stream runs on the channel: a step's last tokens may go unpaid, where
     * waiting would lose the whole difference (review AA, AA-1).
     */
    @Test
    void aStaleCloseSeenNearTheQuarantinesEnd_isAnsweredAtOnce_evenWhileAStreamRuns(@TempDir Path paymentDir) {
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        MutableClock workerClock = new MutableClock(Instant.now());
        // Watched every 6 s, within the stream's 6 s: an answer within 4.2 s of the sighting came
        // from the watch that saw it.
        Duration watch = Duration.ofSeconds(6);
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, workerWallet, workerWallet, null, watch, workerClock);
        Future<TestNetwork.Reply> running = paidStream(close);
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            close.start.run();
            workerClock.advance(Duration.between(workerClock.instant(), Instant.now()).plus(QUARANTINE).minusSeconds(5));
            answeredInTheWatchThatSawIt(workerLog, watch);
        }
        assertThat(TestNetwork.await(running).body()).contains("is closing on chain");
        QuarantinedState answered = ChannelData.read(chain.client(), close.contract).quarantined().orElseThrow();
        assertThat(answered.challenged()).isTrue();
        assertThat(answered.sentA()).isGreaterThan(BigInteger.valueOf(close.owed));
    }

    /**
     * A close started with the gateway's key that pays all the worker holds needs no answer, and
     * the worker leaves the channel at once; it still reports it first, so the gateway raises its
     * alarm (review AA, AA-2: it left without a word).
     */
    @Test
    void aGatewayKeyCloseThatNeedsNoAnswer_isStillReported_andRaisesTheAlarm(@TempDir Path paymentDir) {
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, workerWallet, workerWallet, owed -> owed);
        try (LogCapture gatewayLog = new LogCapture(ChannelBilling.class)) {
            close.start.run();
            eventually("the worker is paid over a new channel", 30_000, () -> net.workerStatus(close.worker)
                    .getJsonArray("channels").stream().map(JsonObject.class::cast)
                    .anyMatch(c -> !c.getString("channel_id").equals(close.channelId)));
            eventually("the gateway checked the close on chain", 10_000, () -> !gatewayLog.linesAt(Level.ERROR).isEmpty());
            assertThat(gatewayLog.linesAt(Level.ERROR)).singleElement().asString()
                    .contains("channel " + close.channelId, "started on chain with this gateway's payer key");
        }
        assertThat(metric("cocoon_payment_channel_closes_started_outside_total")).isEqualTo(1);
    }

    /**
     * One close reported again and again reads the chain, logs and counts once: each report ran a
     * chain read on the worker pool the payment rounds use (review AA, AA-3).
     */
    @Test
    void aClosingReportRepeated_isCheckedAndCountedOnce(@TempDir Path paymentDir) {
        RawOnChain on = rawSessionOnChain(paymentDir);
        RawSession raw = on.session();
        Address contract = Address.of(raw.await(GatewayMessage::hasRegistered).getRegistered().getChannel().getChannelAddress());
        ChannelId id = ChannelId.fromHex(raw.channelId());
        SignedSemiChannel nothing = on.payerKey().sign(new SemiChannelState(id, new SemiChannelBody(1, 0)));
        OnChainChannel.asA(ChannelData.read(chain.client(), contract).terms(), on.payerKey(), chain.client(),
                        new ChannelCosts(FeeSchedule.read(chain.client())))
                .startUncooperativeClose(on.gatewayWallet(), nothing, on.journal().openChannels().getFirst().payeeState());
        try (LogCapture gatewayLog = new LogCapture(ChannelBilling.class)) {
            for (int i = 0; i < 5; i++) {
                raw.call().write(WorkerMessage.newBuilder().setChannelClosingOnChain(ChannelClosingOnChain.newBuilder()
                        .setChannelId(ByteString.copyFrom(id.toBytes())).setStartedByGatewayKey(true)).build());
            }
            eventually("the gateway checked the close on chain", 10_000, () -> !gatewayLog.linesAt(Level.ERROR).isEmpty());
            assertThat(adminWorkers().getJsonObject(0).getBoolean("channel_closing")).isTrue();
            assertThat(gatewayLog.linesAt(Level.ERROR)).hasSize(1);
            assertThat(gatewayLog.linesAt(Level.WARN)).filteredOn(l -> l.contains("reports an uncooperative close")).hasSize(1);
        }
        assertThat(metric("cocoon_payment_channel_closes_started_outside_total")).isEqualTo(1);
        raw.call().cancel();
    }

    /**
     * A close asked for a channel read from the journal, whose session ends while its contract is
     * read (a slow chain API; here a busy worker pool): the channel stays open and unattached, and
     * the worker's next session gets the close signed (review AA, AA-4: the channel stayed
     * attached to the dead session, closing, and every later close request ended its session).
     */
    @Test
    void aCloseWhoseSessionEndsWhileItsContractIsRead_isSignedOnTheNextSession(@TempDir Path paymentDir) throws Exception {
        RawOnChain on = rawSessionOnChain(paymentDir);
        RawSession first = on.session();
        WorkerPayments payments = on.payments();
        ChannelId old = ChannelId.fromHex(first.channelId());
        SignedSemiChannel held = on.payerKey().sign(new SemiChannelState(old, new SemiChannelBody(1, 0)));
        first.call().write(WorkerMessage.newBuilder().setCloseRequest(CloseRequest.newBuilder()
                .setSignedStateBoc(ByteString.copyFrom(held.boc())).setSeqnoB(1).setNextChannel(true)).build());
        first.await(GatewayMessage::hasNextChannel);
        first.call().end();
        net.close();
        net = new TestNetwork(RAW_PAYMENTS, new ChannelOnChain(chain.client(), on.gatewayWallet(), QUARANTINE, CONDITIONAL_CLOSE),
                FEE_PER_TOKEN, on.journal());
        RawSession second = RawSession.register(net, payments);
        assertThat(second.channelId()).isNotEqualTo(old.hex());
        for (int i = 0; i < 40; i++) {
            net.vertx.executeBlocking(() -> {
                Thread.sleep(1_500);
                return null;
            }, false);
        }
        second.call().write(WorkerMessage.newBuilder().setCloseRequest(CloseRequest.newBuilder()
                .setSignedStateBoc(ByteString.copyFrom(held.boc())).setSeqnoB(1)).build());
        second.call().end();
        eventually("the close was given up with its session", 10_000, () -> net.call(HttpMethod.GET, "/admin/workers",
                TestNetwork.ADMIN_KEY, null).json().getJsonArray("closing_channels").isEmpty());

        RawSession third = RawSession.register(net, payments);
        third.call().write(WorkerMessage.newBuilder().setCloseRequest(CloseRequest.newBuilder()
                .setSignedStateBoc(ByteString.copyFrom(held.boc())).setSeqnoB(1)).build());
        assertThat(third.await(GatewayMessage::hasCloseSigned).getCloseSigned().getChannelId())
                .isEqualTo(ByteString.copyFrom(old.toBytes()));
        third.call().cancel();
    }

    private static final PaymentOptions RAW_PAYMENTS = new PaymentOptions(true, 1, 50, DEPOSIT);

    /**
     * A gateway paying on chain with one raw session registered on it (its channel accepted and
     * journaled), and the gateway's payer key at hand: what someone holding it can sign.
     */
    private RawOnChain rawSessionOnChain(Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        InMemoryChannelJournal journal = new InMemoryChannelJournal();
        net = new TestNetwork(RAW_PAYMENTS, new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE),
                FEE_PER_TOKEN, journal);
        WorkerPayments payments = new WorkerPayments(new WorkerPaymentOptions(paymentDir, payout.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000), new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        RawSession session = RawSession.register(net, payments);
        eventually("the payee state is journaled", 10_000, () -> journal.openChannels().getFirst().payeeState() != null);
        PaymentKeyPair payerKey = journal.payerKey(() -> {
            throw new AssertionError("the gateway made its key already");
        });
        return new RawOnChain(gatewayWallet, journal, payments, session, payerKey);
    }

    private record RawOnChain(ChainWallet gatewayWallet, InMemoryChannelJournal journal, WorkerPayments payments,
                              RawSession session, PaymentKeyPair payerKey) {}

    /** A report of a close on a channel that is not the session's is a protocol error: the session ends. */
    @Test
    void aClosingReport_forAChannelNotTheSessions_endsTheSession(@TempDir Path paymentDir) {
        ChainWallet payout = onChainGatewayAndPayout(DEPOSIT);
        WorkerPayments payments = new WorkerPayments(new WorkerPaymentOptions(paymentDir, payout.address().toRaw(),
                100 * FEE_PER_TOKEN, 10_000), new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC()));
        RawSession raw = RawSession.register(net, payments);
        GrpcClientResponse<WorkerMessage, GatewayMessage> response = TestNetwork.await(raw.call().response());
        raw.call().write(WorkerMessage.newBuilder().setChannelClosingOnChain(ChannelClosingOnChain.newBuilder()
                .setChannelId(ByteString.copyFrom(new byte[16])).setStartedByGatewayKey(true)).build());
        eventually("the session ended", 10_000, () -> response.status() != null);
        assertThat(response.status()).isEqualTo(GrpcStatus.INVALID_ARGUMENT);
    }

    /**
     * The payer key can also sign a new state with a higher seqno than any it sent and almost
     * nothing in it. The contract takes an answer that sent more under a lower seqno, so the
     * worker answers by the amount (audit Z, Z-1: it answered only a lower seqno, and lost all it
     * had earned on the channel).
     */
    @Test
    void aGatewayClosingWithAForgedHigherSeqno_isAnsweredWithTheStateThatSentMore(@TempDir Path paymentDir) {
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, workerWallet, workerWallet, owed -> 1);
        assertThat(close.old.seqno()).isGreaterThan(close.latestSeqno);
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            close.start.run();
            eventually("the worker answered the close", 20_000, () -> workerLog.linesAt(Level.WARN).stream()
                    .anyMatch(l -> l.contains("answered its gateway's close")));
        }
        QuarantinedState answered = ChannelData.read(chain.client(), close.contract).quarantined().orElseThrow();
        assertThat(answered.seqnoA()).isEqualTo(close.latestSeqno);
        assertThat(answered.sentA()).isEqualTo(BigInteger.valueOf(close.owed));
    }

    /**
     * A close that pays less than the latest state by less than an answer's gas is not answered
     * (the answer would cost more than it wins), and the worker says so with the amount (audit Z2,
     * N-4: it dropped it silently).
     */
    @Test
    void aCloseShortByLessThanAnAnswerCosts_isNotAnswered_andSaidWithTheAmount(@TempDir Path paymentDir) {
        ChainWallet workerWallet = wallet(BigInteger.valueOf(DEPOSIT));
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, workerWallet, workerWallet, owed -> owed - 1_000_000);
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            close.start.run();
            eventually("the worker said it leaves it unanswered", 20_000, () -> workerLog.linesAt(Level.WARN).stream()
                    .anyMatch(l -> l.contains("1000000 less than its latest state, which is less than an answer costs: not answered")));
            assertThat(workerLog.lines()).noneMatch(l -> l.contains("answered its gateway's close"));
        }
        assertThat(ChannelData.read(chain.client(), close.contract).quarantined().orElseThrow().challenged()).isFalse();
    }

    /** A worker's wallet that cannot pay an answer's gas is said at start, not first when a close needs one (audit Z, Z-4). */
    @Test
    void aWorkerWalletHoldingLessThanAnAnswerCosts_isSaidAtStart() {
        ChainWallet poor = wallet(BigInteger.valueOf(5_000_000));
        try (LogCapture log = new LogCapture(OnChainSettlement.class)) {
            new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC(), poor, OnChainSettlement.SILENCE_LIMIT);
            assertThat(log.linesAt(Level.WARN)).singleElement().asString().contains("wallet "
                    + poor.address().toNonBounceable() + " holds ", "an answer to a stale close attaches", "send it more TON");
        }
    }

    /**
     * The same close, against a worker with no wallet to pay an answer's gas: it cannot answer,
     * says so once at ERROR with when the quarantine ends (while there is time to fund a wallet),
     * and still finishes the close by an external message, recording what it was paid: the old
     * state.
     */
    @Test
    void aGatewayClosingWithAnOldState_againstAWorkerWithoutAWallet_isSaidOnce_andPaysTheOldState(@TempDir Path paymentDir)
            throws InterruptedException {
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        StaleClose close = gatewayClosesWithAnOldState(paymentDir, payout, null, null);
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            close.start.run();
            eventually("the worker said it cannot answer", 10_000, () -> !workerLog.linesAt(Level.ERROR).isEmpty());
            Thread.sleep(2_500);  // two more watches
            QuarantinedState started = ChannelData.read(chain.client(), close.contract).quarantined().orElseThrow();
            assertThat(workerLog.linesAt(Level.ERROR)).singleElement().asString().contains("its gateway's close pays "
                    + close.old.sentNanoton() + " nanoTON, not the " + close.owed + " of its latest state",
                    "no funded wallet", "before the quarantine ends at " + started.startedAt().plus(QUARANTINE));
        }
        JsonObject unanswered = channelById(close.worker, close.channelId);
        assertThat(unanswered.getBoolean("quarantined")).isTrue();
        assertThat(unanswered.getJsonObject("close").getBoolean("answered")).isFalse();
        assertThat(unanswered.getJsonObject("close").getLong("pays_nanoton")).isEqualTo(close.old.sentNanoton());
        // What the owner's alert reads: the close pays that much less than the latest state.
        assertThat(net.workerGet(close.worker, "/metrics").toString()).contains("cocoon_worker_channel_close_shortfall_nanoton{"
                + "channel=\"" + close.channelId + "\",started_by=\"gateway\"} " + (double) (close.owed - close.old.sentNanoton()));
        assertThat(ChannelData.read(chain.client(), close.contract).quarantined().orElseThrow().challenged()).isFalse();
        finishAndAssertPaid(close, payout, close.old.sentNanoton());
    }

    /**
     * A close started on a channel nothing was paid on yet: nothing to answer and nothing owed. It
     * is logged as any close, the worker moves to a new channel, and the finish records it closed
     * with nothing paid out (audit Z, Z-5: the watch threw a NullPointerException storing a
     * channel that had no state, at the close and again at the finish).
     */
    @Test
    void aGatewayClosingAChannelNeverPaidOn_isLoggedAndFinished_withNothingOwed(@TempDir Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        InMemoryChannelJournal journal = new InMemoryChannelJournal();
        net = new TestNetwork(new PaymentOptions(true, 1, 50, DEPOSIT),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN, journal);
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(paymentDir, payout.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), DEPOSIT, Clock.systemUTC(), null, OnChainSettlement.SILENCE_LIMIT,
                        Duration.ofSeconds(1)));
        JsonObject channel = onlyChannel(worker);
        String id = channel.getString("channel_id");
        Address contract = Address.of(channel.getString("channel_address"));
        PaymentKeyPair payerKey = journal.payerKey(() -> {
            throw new AssertionError("the gateway made its key already");
        });
        SignedSemiChannel nothing = payerKey.sign(new SemiChannelState(ChannelId.fromHex(id), new SemiChannelBody(1, 0)));
        try (LogCapture log = new LogCapture("ROOT")) {
            OnChainChannel.asA(ChannelData.read(chain.client(), contract).terms(), payerKey, chain.client(),
                    new ChannelCosts(FeeSchedule.read(chain.client())))
                    .startUncooperativeClose(gatewayWallet, nothing, journal.openChannels().getFirst().payeeState());
            eventually("the worker is paid over a new channel", 30_000, () -> net.workerStatus(worker)
                    .getJsonArray("channels").stream().map(JsonObject.class::cast)
                    .anyMatch(c -> !c.getString("channel_id").equals(id)));
            assertThat(log.linesAt(Level.WARN)).anySatisfy(l -> assertThat(l).contains("channel " + id,
                    "its gateway started an uncooperative close with its state of seqno 1, 0 nanoTON"));
            assertThat(log.lines()).noneMatch(l -> l.contains("Exception"));
        }
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            chain.advanceTime(QUARANTINE.plus(CONDITIONAL_CLOSE).plusSeconds(1));
            eventually("the worker finished the close", 10_000, () -> channelById(worker, id).getBoolean("closed_on_chain"));
            assertThat(workerLog.linesAt(Level.INFO)).anySatisfy(l -> assertThat(l).contains(
                    "finished the uncooperative close of channel " + id, "it owed this worker nothing"));
            assertThat(workerLog.lines()).noneMatch(l -> l.contains("Exception"));
        }
    }

    /**
     * A gateway and a worker paid on chain, some states apart, and the gateway's key ready to close
     * with a stale state: an older one it sent, or ({@code forged}, given what the worker is owed)
     * a new one with a higher seqno than any it sent, paying what {@code forged} says.
     */
    private StaleClose gatewayClosesWithAnOldState(Path paymentDir, ChainWallet payout, ChainWallet workerWallet,
                                                   LongUnaryOperator forged) {
        return gatewayClosesWithAnOldState(paymentDir, payout, workerWallet, forged, Duration.ofSeconds(1));
    }

    private StaleClose gatewayClosesWithAnOldState(Path paymentDir, ChainWallet payout, ChainWallet workerWallet,
                                                   LongUnaryOperator forged, Duration watchEvery) {
        return gatewayClosesWithAnOldState(paymentDir, payout, workerWallet, forged, watchEvery, Clock.systemUTC());
    }

    /**
     * @param watchEvery how often the worker reads its channels on chain
     * @param clock      the worker's settlement clock
     */
    private StaleClose gatewayClosesWithAnOldState(Path paymentDir, ChainWallet payout, ChainWallet workerWallet,
                                                   LongUnaryOperator forged, Duration watchEvery, Clock clock) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        InMemoryChannelJournal journal = new InMemoryChannelJournal();
        net = new TestNetwork(new PaymentOptions(true, 1, 50, DEPOSIT),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN, journal);
        // The threshold and the silence are out of reach: only the gateway's close ends this channel.
        // Replies run to max_tokens: a stream without one lasts 6 s.
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096, 3_000), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(paymentDir, payout.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), DEPOSIT, clock, workerWallet, OnChainSettlement.SILENCE_LIMIT,
                        watchEvery));
        JsonObject channel = onlyChannel(worker);
        Address contract = Address.of(channel.getString("channel_address"));
        streamUntilThePaidStateHolds(worker, contract, THRESHOLD);
        SignedSemiChannel older = SignedSemiChannel.parse(Base64.getDecoder().decode(onlyChannel(worker).getString("signed_state_boc")));
        long owed = streamUntilThePaidStateHolds(worker, contract, 2 * THRESHOLD);
        long latestSeqno = onlyChannel(worker).getLong("seqno");
        PaymentKeyPair payerKey = journal.payerKey(() -> {
            throw new AssertionError("the gateway made its key already");
        });
        SignedSemiChannel stale = forged == null ? older : payerKey.sign(new SemiChannelState(older.channelId(),
                new SemiChannelBody(latestSeqno + 1_000, forged.applyAsLong(owed))));
        OnChainChannel asGateway = OnChainChannel.asA(ChannelData.read(chain.client(), contract).terms(), payerKey,
                chain.client(), new ChannelCosts(FeeSchedule.read(chain.client())));
        return new StaleClose(worker, channel.getString("channel_id"), contract, stale, owed, latestSeqno,
                () -> asGateway.startUncooperativeClose(gatewayWallet, stale, journal.openChannels().getFirst().payeeState()));
    }

    private record StaleClose(WorkerNode worker, String channelId, Address contract, SignedSemiChannel old, long owed,
                              long latestSeqno, Runnable start) {}

    /** A long stream on {@code close}'s channel, once a state paid some of it: its sequence runs when the close comes. */
    private Future<TestNetwork.Reply> paidStream(StaleClose close) {
        Future<TestNetwork.Reply> running = net.request(TestNetwork.post("/v1/chat/completions", API_KEY),
                        chat("synthetic", true, "\"max_tokens\":3000"))
                .compose(r -> r.body().map(b -> new TestNetwork.Reply(r.statusCode(), b.toString(), r)));
        eventually("the stream is paid for", 10_000, () -> channelById(close.worker, close.channelId).getLong("sent_nanoton")
                > close.owed);
        return running;
    }

    /** The worker saw the close and answered it in the same watch: within 70% of {@code watch} of the sighting. */
    private static void answeredInTheWatchThatSawIt(LogCapture workerLog, Duration watch) {
        eventually("the worker saw the close", 2 * watch.toMillis() + 5_000, () -> workerLog.linesAt(Level.WARN).stream()
                .anyMatch(l -> l.contains("its gateway started an uncooperative close")));
        eventually("the worker answered in the watch that saw it", watch.toMillis() * 7 / 10, () -> workerLog.linesAt(Level.WARN)
                .stream().anyMatch(l -> l.contains("answered its gateway's close")));
    }

    /** Past the quarantine: the worker finishes the close, and {@code payout} receives {@code paid} less the fee. */
    private void finishAndAssertPaid(StaleClose close, ChainWallet payout, long paid) {
        try (LogCapture workerLog = new LogCapture(WorkerPayments.class)) {
            chain.advanceTime(QUARANTINE.plus(CONDITIONAL_CLOSE).plusSeconds(1));
            eventually("the worker finished the close", 10_000, () -> channelById(close.worker, close.channelId)
                    .getBoolean("closed_on_chain"));
            assertLoggedPayout(workerLog, "finished the uncooperative close", close.contract, payout, paid);
        }
        ChainTransaction received = newest(payout.address());
        assertThat(Address.of(received.inMessage().orElseThrow().source())).isEqualTo(close.contract);
        assertThat(received.inMessage().orElseThrow().valueNanoton()).isEqualTo(BigInteger.valueOf(paid)
                .subtract(new ChannelCosts(FeeSchedule.read(chain.client())).payoutForwardFee()));
        assertThat(net.workerJson(close.worker, "/earnings").getLong("paid_out_nanoton")).isEqualTo(paid);
    }

    /**
     * A channel whose quarantine is too short to answer a close in is refused before any credit:
     * the worker reads the chain every few seconds, and its answer takes time to land.
     */
    @Test
    void aChannelWithAQuarantineTooShortToAnswerIn_isRefused(@TempDir Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, DEPOSIT),
                new ChannelOnChain(chain.client(), gatewayWallet, Duration.ofSeconds(59), CONDITIONAL_CLOSE), FEE_PER_TOKEN);
        try (LogCapture workerLog = new LogCapture("org.cocoonjvm.worker")) {
            net.deployWorker("w", new WorkerPaymentOptions(paymentDir, payout.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                    new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()), net.gateway.port());
            eventually("the worker refused the channel", 10_000, () -> workerLog.lines().stream()
                    .anyMatch(m -> m.contains("gives 59 s to answer an uncooperative close") && m.contains("needs at least 60 s")));
        }
    }

    /**
     * Audit G, C1: a worker restarted with another payout address, its channel still without a
     * state, used to get a second contract, funded, under the same channel id; every later state
     * was then redeemable on both. It is refused instead, the first contract stays the only one,
     * and the old address back is accepted on the same channel.
     */
    @Test
    void aKnownPaymentKeyWithAnotherPayoutAddress_isRefused_andGetsNoSecondContract(@TempDir Path paymentDir) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet first = wallet(BigInteger.valueOf(DEPOSIT / 10));
        ChainWallet second = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, DEPOSIT),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN);
        WorkerNode worker = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(paymentDir, first.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));
        JsonObject channel = onlyChannel(worker);
        Address contract = Address.of(channel.getString("channel_address"));
        // Stopped with nothing sent: nothing is closed, the channel stays open and funded, and the
        // worker says so (audit M, M-3: its stop line said it closes its channels, and nothing more).
        try (LogCapture payments = new LogCapture(WorkerPayments.class)) {
            net.stopWorker(0);
            assertThat(payments.linesAt(Level.INFO)).singleElement().asString().startsWith("INFO channel "
                    + channel.getString("channel_id") + " at " + channel.getString("channel_address_raw") + " stays open: it holds"
                    + " 0 nanoTON, not more than the ").contains("nanoTON its close costs");
        }
        BigInteger walletBefore = gatewayWallet.balance();

        try (LogCapture workerLog = new LogCapture("org.cocoonjvm.worker.serve.GatewayLink")) {
            Future<String> moved = net.deployWorker("moved", new WorkerPaymentOptions(paymentDir,
                    second.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                    new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()), net.gateway.port());

            eventually("the worker was refused", 15_000, () -> refusal("payout_address_changed") != null);
            // Both forms of each address: the owner typed the user-friendly one (audit M, M-3).
            assertThat(refusal("payout_address_changed").getString("message")).contains(channel.getString("channel_id"),
                    contract.toRaw(), first.address().toNonBounceable() + " (" + first.address().toRaw() + ")",
                    second.address().toNonBounceable() + " (" + second.address().toRaw() + ")",
                    "--payout-address " + first.address().toNonBounceable(), "--payment-dir");
            assertThat(moved.isComplete()).isFalse();
            assertThat(workerLog.linesAt(Level.ERROR)).anySatisfy(l -> assertThat(l)
                    .contains("payout_address_changed", "Retrying cannot fix"));
        }
        assertThat(gatewayWallet.balance()).as("the gateway's wallet deployed and funded nothing more")
                .isEqualTo(walletBefore);
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.OPEN);
        net.stopWorker(1);

        WorkerNode back = net.addWorker(new SyntheticEngine(500, 16, 4096), SchedulerOptions.DEFAULTS, 2_000,
                new WorkerPaymentOptions(paymentDir, first.address().toRaw(), 100 * FEE_PER_TOKEN, 10_000),
                new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));
        JsonObject again = onlyChannel(back);
        assertThat(again.getString("channel_id")).isEqualTo(channel.getString("channel_id"));
        assertThat(Address.of(again.getString("channel_address"))).isEqualTo(contract);
        assertThat(gatewayWallet.balance()).isEqualTo(walletBefore);
    }

    private JsonObject refusal(String reason) {
        return net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json().getJsonArray("refused")
                .stream().map(JsonObject.class::cast).filter(r -> reason.equals(r.getString("reason")))
                .findFirst().orElse(null);
    }

    @Test
    void aWorkerPaidOnChainRefusesAChannelWithoutAnOpenContractBehindIt() {
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        WorkerPayments payments = new WorkerPayments(
                new WorkerPaymentOptions(null, payout.address().toRaw(), 1_000_000, 10_000),
                new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()));
        PaymentChannel offChain = PaymentChannel.newBuilder()
                .setChannelId(ByteString.copyFrom(new byte[16]))
                .setGatewayPublicKey(ByteString.copyFrom(PaymentKeyPair.generate(new SecureRandom()).publicKey().toBytes()))
                .setDepositCapNanoton(DEPOSIT)
                .build();
        assertThatThrownBy(() -> payments.open(offChain))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("needs its channel_address");
        // An address with a wallet, not a channel, behind it.
        assertThatThrownBy(() -> payments.open(offChain.toBuilder().setChannelAddress(payout.address().toRaw()).build()))
                .isInstanceOfSatisfying(ChainException.class,
                        e -> assertThat(e.code()).isEqualTo("channel_unreadable"));
        assertThat(payments.status()).isEmpty();
        // A threshold a close would eat is refused up front.
        assertThatThrownBy(() -> new OnChainSettlement(chain.client(), 1_000, Clock.systemUTC()))
                .hasMessageContaining("dust");
    }

    /**
     * Audit G, M1: a gateway whose channels are off chain (it started without usable funding)
     * and a worker paid on chain. The worker refuses every offer, as it must, but said it with an
     * 11-frame trace every 5 s.
     */
    @Test
    void anOnChainWorker_offeredAnOffChainChannel_refusesIt_inOneLine_notAgainWithinAMinute() {
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, DEPOSIT), null, FEE_PER_TOKEN);
        try (LinkLog link = new LinkLog()) {
            net.deployWorker("on-chain", new WorkerPaymentOptions(null, payout.address().toRaw(), 1_000_000, 10_000),
                    new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()), net.gateway.port());
            eventually("offered twice", 15_000, () -> link.log.linesAt(Level.DEBUG).stream()
                    .anyMatch(l -> l.contains("refusing the payment channel") && l.endsWith("; again")));

            assertThat(link.log.lines()).filteredOn(l -> !l.startsWith("DEBUG")).singleElement().asString()
                    .startsWith("ERROR refusing the payment channel of gateway 127.0.0.1:" + net.gateway.port()
                            + ": the gateway offers channel ")
                    .contains("off chain only; this worker is paid on chain and needs its channel_address")
                    .endsWith("logging this again only once a minute while it lasts");
            // The gateway's operator sees it too, in the worker's words, not only a worker that
            // registers and leaves every few seconds.
            JsonObject refused = refusal("channel_refused");
            assertThat(refused).isNotNull();
            assertThat(refused.getString("id")).isEqualTo("on-chain");
            assertThat(refused.getString("message")).startsWith("the worker refused payment channel ")
                    .contains("needs its channel_address");
            assertThat(refused.getLong("count")).isGreaterThanOrEqualTo(2);
        }
    }

    /**
     * Audit G, L2: a gateway wallet that can't fund the channel. The worker's refusal says why, once
     * a minute; it was also an ERROR with a full stack trace at every retry.
     */
    @Test
    void anUnderfundedGatewayWallet_isSaidInTheRefusal_oncePerMinute_withoutAStackTrace() {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(DEPOSIT / 2));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, DEPOSIT), new ChannelOnChain(chain.client(), gatewayWallet), FEE_PER_TOKEN);
        try (LinkLog link = new LinkLog(); LogCapture gateway = new LogCapture("org.cocoonjvm.gateway")) {
            net.deployWorker("on-chain", new WorkerPaymentOptions(null, payout.address().toRaw(), 1_000_000, 10_000),
                    new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()), net.gateway.port());
            eventually("refused twice", 15_000, () -> link.log.linesAt(Level.DEBUG).stream()
                    .anyMatch(l -> l.contains("refused this worker again")));

            assertThat(gateway.lines()).filteredOn(l -> l.contains("refused") || l.startsWith("ERROR")).singleElement()
                    .asString().startsWith("WARN worker 'on-chain' from ").contains("refused (wallet_underfunded)")
                    .contains("send it TON").doesNotContain("Exception");
        }
        assertThat(metric("cocoon_payment_channel_open_refusals_total{reason=\"wallet_underfunded\"}")).isPositive();
    }

    /**
     * A gateway whose wallet was empty (not even deployed) when it started refuses workers paid on
     * chain, saying why, and serves them once the wallet is funded, without a restart: it used to
     * fall back to off-chain channels for its whole life (audit G, M1).
     */
    @Test
    void aGatewayStartedWithAnEmptyWallet_servesWorkersPaidOnChain_onceItIsFunded() {
        ChainWallet empty = new ChainWallet(TweetNaclFast.Signature.keyPair(), chain.client(), chain.clock());
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, DEPOSIT), new ChannelOnChain(chain.client(), empty), FEE_PER_TOKEN);
        Future<String> deployed = net.deployWorker("on-chain", new WorkerPaymentOptions(null, payout.address().toRaw(), 1_000_000,
                10_000), new OnChainSettlement(chain.client(), THRESHOLD, Clock.systemUTC()), net.gateway.port());
        eventually("refused for the empty wallet", 10_000, () -> net.call(HttpMethod.GET, "/admin/workers",
                TestNetwork.ADMIN_KEY, null).json().getJsonArray("refused").stream().map(JsonObject.class::cast)
                .anyMatch(r -> "wallet_underfunded".equals(r.getString("reason"))));

        // Bound to its contract, never deployed: nothing is owed or locked there (audit K, K-9).
        assertThat(net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json()
                .getJsonArray("absent_channels")).isEmpty();
        assertThat(metric("cocoon_payment_channels_absent")).isZero();

        chain.faucet(empty.address(), BigInteger.valueOf(5 * DEPOSIT));

        TestNetwork.await(deployed);  // registered: its channel opened on chain, the wallet deployed on the way
        assertThat(empty.balance()).isLessThan(BigInteger.valueOf(4 * DEPOSIT));
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":5"));
        assertThat(reply.status()).as(reply.body()).isEqualTo(200);
        // Its first open was refused after the bind: counted by the open that deployed it (audit K, K-3).
        assertThat(metric("cocoon_payment_channels_opened_total")).isEqualTo(1);
    }

    /** The worker's link to its gateway, DEBUG included: every retry shows. */
    private static final class LinkLog implements AutoCloseable {
        private final ch.qos.logback.classic.Logger logger =
                (ch.qos.logback.classic.Logger) LoggerFactory.getLogger("org.cocoonjvm.worker.serve.GatewayLink");
        private final Level before = logger.getLevel();
        final LogCapture log = new LogCapture("org.cocoonjvm.worker.serve.GatewayLink");

        LinkLog() {
            logger.setLevel(Level.DEBUG);
        }

        @Override
        public void close() {
            log.close();
            logger.setLevel(before);
        }
    }

    /** A gateway paying on chain from a funded wallet, channels capped at {@code cap}; returns a payout wallet. */
    private ChainWallet onChainGatewayAndPayout(long cap) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, cap),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN);
        return payout;
    }

    /** The payout's newest transaction came from {@code contract} with exactly {@code owed}, less the forwarding fee. */
    private static void assertPaidOut(ChainWallet payout, Address contract, long owed) {
        ChannelCosts costs = new ChannelCosts(FeeSchedule.read(chain.client()));
        ChainTransaction paid = newest(payout.address());
        assertThat(Address.of(paid.inMessage().orElseThrow().source())).isEqualTo(contract);
        assertThat(paid.inMessage().orElseThrow().valueNanoton())
                .isEqualTo(BigInteger.valueOf(owed).subtract(costs.payoutForwardFee()));
    }

    private static ChainWallet wallet(BigInteger nanoton) {
        ChainWallet w = new ChainWallet(TweetNaclFast.Signature.keyPair(), chain.client(), chain.clock());
        chain.faucet(w.address(), nanoton);
        w.deploy();
        return w;
    }

    private JsonObject onlyChannel(WorkerNode worker) {
        var channels = net.workerStatus(worker).getJsonArray("channels");
        assertThat(channels).hasSize(1);
        return channels.getJsonObject(0);
    }

    private JsonObject channelById(WorkerNode worker, String id) {
        return net.workerStatus(worker).getJsonArray("channels").stream().map(JsonObject.class::cast)
                .filter(c -> c.getString("channel_id").equals(id)).findFirst().orElseThrow();
    }

    private static ChainTransaction newest(Address account) {
        return chain.client().transactions(account, 1, Optional.empty()).getFirst();
    }

    /**
     * Streams requests until the worker has earned at least {@code target} more, then waits until
     * its latest state pays all it earned on a channel still open on chain.
     *
     * @return what the worker is owed
     */
    private long streamUntilThePaidStateHolds(WorkerNode worker, Address contract, long target) {
        long paidBefore = onlyChannel(worker).getLong("sent_nanoton");
        long earned = 0;
        while (earned < target) {
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":40"));
            assertThat(reply.status()).isEqualTo(200);
            JsonObject usage = new JsonObject(reply.body()).getJsonObject("usage");
            earned += FEE_PER_TOKEN * (usage.getLong("prompt_tokens") + usage.getLong("completion_tokens"));
        }
        long owed = paidBefore + earned;
        eventually("the worker holds a state for all " + owed + " nanoTON",
                () -> onlyChannel(worker).getLong("sent_nanoton") == owed);
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.OPEN);
        return owed;
    }
}
