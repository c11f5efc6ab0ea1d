package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import io.vertx.core.Future;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Base64;
import org.cocoonjvm.billing.chain.ChainTransaction;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.FeeSchedule;
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
 * What a stopping worker or gateway leaves on chain. Grouped because a stop cuts into the usual
 * order of a close (drain, sign, send, settle), and each test checks that the money in the
 * contract still reaches the worker or stays recoverable: closed cooperatively before the worker
 * leaves and after its last stream, kept open in the gateway's journal, or closed by the worker
 * alone, past the quarantine, when its gateway is gone for good.
 */
class OnChainStopTest extends OnChainChannelFixture {
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
        Future<TestNetwork.Reply> running = net.reply(TestNetwork.post("/v1/chat/completions", API_KEY),
                        chat("synthetic", false, "\"max_tokens\":300"));  // the body read on the client context, as the response comes
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
}
