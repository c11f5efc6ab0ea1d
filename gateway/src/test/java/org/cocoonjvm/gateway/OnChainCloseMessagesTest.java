package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import ch.qos.logback.classic.Level;
import com.google.protobuf.ByteString;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.InMemoryChannelJournal;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

/**
 * A worker's close messages arriving in the orders a live worker seldom produces: a close request
 * sent again on a later session, one whose session ends while the gateway reads the contract,
 * close reports repeated or naming another channel, and a payer-key close of a channel nothing was
 * paid on yet. Grouped because most drive a raw gRPC session by hand ({@code RawSession}), the
 * one way to put each message exactly where a lost reply, a crash or a slow chain would; each
 * checks that the gateway neither strands the channel nor counts or logs the close twice.
 */
class OnChainCloseMessagesTest extends OnChainChannelFixture {
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

    /** A worker's session driven by the test, paid through {@code payments}. */
    private record RawSession(GrpcClientRequest<WorkerMessage, GatewayMessage> call, List<GatewayMessage> received,
                              String channelId) {
        /** Says Hello with {@code payments}' key and payout address, and accepts the channel of Registered. */
        static RawSession register(TestNetwork net, WorkerPayments payments) {
            List<GatewayMessage> received = new CopyOnWriteArrayList<>();
            GrpcClientRequest<WorkerMessage, GatewayMessage> call = TestNetwork.await(net.onClientContext(() -> GrpcClient.client(net.vertx).request(
                    SocketAddress.inetSocketAddress(net.gateway.port(), "127.0.0.1"), GatewayGrpcClient.Session)));
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
}
