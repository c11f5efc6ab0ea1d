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
import io.vertx.core.json.JsonObject;
import java.math.BigInteger;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.OnChainSettlement;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * Whether a channel is opened at all: the refusals and funding problems that a worker paid on
 * chain, or its gateway, meets before any state is signed. Kept together because each is decided
 * before money moves, where a mistake either funds a contract that should not exist (a second
 * one under a channel id already in use) or leaves a worker retrying unpaid; the operator must be
 * told why, once, in words that say what to do, and be served once the cause is fixed.
 */
class OnChainOpeningTest extends OnChainChannelFixture {
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
}
