package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Clock;
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
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.OnChainSettlement;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

/**
 * Channels across restarts, and what the gateway's journal and the worker's payment dir bring
 * back. Grouped because a restart is where what a process held in memory and what the contract
 * holds can come apart: each test restarts one side and checks that it takes up the same contract
 * (nothing deployed or funded twice, whatever the cap is now), shows what was earned and paid
 * before, and settles what the stop left open.
 */
class OnChainRestartTest extends OnChainChannelFixture {
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
}
