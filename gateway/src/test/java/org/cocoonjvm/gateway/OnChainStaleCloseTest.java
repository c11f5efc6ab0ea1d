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
import java.time.Instant;
import java.util.Base64;
import java.util.function.LongUnaryOperator;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.chain.ChainTransaction;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.chain.QuarantinedState;
import org.cocoonjvm.billing.channel.InMemoryChannelJournal;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
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
 * The worker against an uncooperative close started with the gateway's payer key and a stale or
 * forged state: what someone holding that key outside the gateway can do to pay the worker less.
 * Grouped because they share one set-up ({@code gatewayClosesWithAnOldState}: a worker some
 * states into its channel, the key ready), and because the answer is a race against the
 * quarantine in which timing, gas and the choice of state all decide what the worker is paid, and
 * the gateway and the owner must both hear of it. {@code StaleClose} stays here, not in the
 * fixture: the tests read its fields directly, which only a class's own nested records allow.
 */
class OnChainStaleCloseTest extends OnChainChannelFixture {
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
        Future<TestNetwork.Reply> running = net.reply(TestNetwork.post("/v1/chat/completions", API_KEY),
                        chat("synthetic", true, "\"max_tokens\":3000"));  // the body read on the client context, as the response comes
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
}
