package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.billing.chain.TestChain.ton;

import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.chain.ChannelSettlement.Action;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.pricing.Cost;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.ton.ton4j.address.Address;

import java.math.BigInteger;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;

/**
 * The whole money path on the emulator: a client's deposit becomes a balance, requests are priced
 * and charged from it, the gateway owes the worker their fee through a channel, and the channel
 * settles on chain when the policy says so.
 */
class FullCycleTest {
    private static final BigInteger CHANNEL_DEPOSIT = ton("1");
    private static final PriceSchedule SCHEDULE = PriceSchedule.of("demo-model", 50_000, 40_000);
    private static final TokenCounts ONE_REQUEST = new TokenCounts(0, 0, 1_000, 0);

    private static LocalChain chain;

    @BeforeAll
    static void startChain() {
        chain = TestChain.startOrSkip();
    }

    @AfterAll
    static void stopChain() {
        if (chain != null) chain.close();
    }

    @Test
    void depositMeterPayAndSettle() {
        ChainClient client = chain.client();
        ChainWallet alice = TestChain.wallet(chain, ton("20"));
        ChainWallet gateway = TestChain.wallet(chain, ton("10"));
        ChainWallet worker = TestChain.wallet(chain, ton("1"));

        // 1. Alice pays her deposit comment into the gateway wallet; the watcher credits it once.
        AccountBook book = new InMemoryAccountBook(Clock.systemUTC());
        book.open("alice");
        DepositSink sink =
                (comment, amount, txHash) ->
                        !comment.equals("cocoon:alice")
                                ? DepositSink.Outcome.UNKNOWN_COMMENT
                                : book.credit("alice", amount, txHash)
                                        ? DepositSink.Outcome.CREDITED
                                        : DepositSink.Outcome.ALREADY_CREDITED;
        DepositWatcher watcher =
                new DepositWatcher(
                        client,
                        sink,
                        chain.clock(),
                        new DepositWatcher.Options(gateway.address(), Duration.ZERO, 20, 0));
        alice.transfer(gateway.address(), ton("5"), "cocoon:alice");
        assertThat(watcher.poll().credited()).hasSize(1);
        assertThat(watcher.poll().credited()).isEmpty();
        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(5_000_000_000L);

        // 2. The gateway opens a channel to the worker; the worker hands back its initial state.
        ChannelCosts costs = new ChannelCosts(FeeSchedule.read(client));
        PaymentKeyPair keysA = PaymentKeyPair.generate(new SecureRandom());
        PaymentKeyPair keysB = PaymentKeyPair.generate(new SecureRandom());
        ChannelTerms terms =
                new ChannelTerms(
                        BigInteger.valueOf(42),
                        gateway.address(),
                        worker.address(),
                        keysA.publicKey().toBytes(),
                        keysB.publicKey().toBytes(),
                        costs.excessFee(),
                        Duration.ofHours(1),
                        Duration.ofMinutes(10));
        OnChainChannel asGateway = OnChainChannel.asA(terms, keysA, client, costs);
        OnChainChannel asWorker = OnChainChannel.asB(terms, keysB, client, costs);
        asGateway.deployAndTopUp(gateway, CHANNEL_DEPOSIT);
        asGateway.init(gateway, CHANNEL_DEPOSIT, BigInteger.ZERO);
        keysB.sign(new SemiChannelState(asWorker.channelId(), SemiChannelBody.INITIAL));
        ChannelPayer payer =
                new ChannelPayer(
                        new org.cocoonjvm.billing.channel.ChannelTerms(
                                asGateway.channelId(),
                                keysA.publicKey(),
                                CHANNEL_DEPOSIT.longValueExact()),
                        keysA,
                        SemiChannelBody.INITIAL);

        // 3. Requests: reserve, charge Alice, owe the worker its fee as a new signed state, until
        //    the policy says the worker's earnings are worth a settlement.
        ChannelSettlement policy =
                new ChannelSettlement(ton("0.1"), Duration.ofMinutes(5), costs, Clock.systemUTC());
        long charged = 0;
        BigInteger owed = BigInteger.ZERO;
        Action action;
        do {
            Reservation hold = book.reserve("alice", Pricing.reservation(SCHEDULE, 1_000, 200));
            Cost cost = Pricing.cost(SCHEDULE, ONE_REQUEST);
            book.settle(hold, cost.clientCost());
            charged += cost.clientCost();
            owed = owed.add(BigInteger.valueOf(cost.workerFee()));
            payer.pay(owed.longValueExact());
            action = policy.onStateAccepted(owed);
        } while (action instanceof Action.Keep);
        assertThat(action).isEqualTo(new Action.CloseCooperatively(ton("0.12")));
        long seqno = payer.last().seqno();
        assertThat(seqno).isEqualTo(3);
        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(5_000_000_000L - charged);

        // 4. Cooperative close, sent by the worker with the gateway's signature.
        CloseTerms close = new CloseTerms(CHANNEL_DEPOSIT.subtract(owed), owed, seqno, 1);
        BigInteger workerBefore = worker.balance();
        asWorker.close(asGateway.signClose(close), close);

        ChainTransaction paid =
                client.transactions(worker.address(), 1, Optional.empty()).getFirst();
        assertThat(Address.of(paid.inMessage().orElseThrow().source()))
                .isEqualTo(asGateway.address());
        BigInteger arrived = paid.inMessage().orElseThrow().valueNanoton();
        assertThat(arrived).isEqualTo(owed.subtract(costs.payoutForwardFee()));
        assertThat(worker.balance().subtract(workerBefore))
                .isEqualTo(arrived.subtract(paid.feeNanoton()));
        assertThat(asGateway.state().status()).isEqualTo(ChannelStatus.UNINITED);
    }
}
