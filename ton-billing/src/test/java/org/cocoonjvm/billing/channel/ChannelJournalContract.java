package org.cocoonjvm.billing.channel;

import java.security.SecureRandom;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * What every {@link ChannelJournal} keeps, in memory or durable: one current channel per payee key
 * (and those it replaced until they close), one payer key, and states that only move up. Durable journals add a restart in their subclasses.
 */
public abstract class ChannelJournalContract {
    protected static final SecureRandom RANDOM = new SecureRandom();

    protected ChannelJournal journal;
    protected PaymentKeyPair payer;
    protected final PaymentPublicKey worker = PaymentKeyPair.generate(RANDOM).publicKey();

    /** A new, empty journal. */
    protected abstract ChannelJournal newJournal();

    @BeforeEach
    void setUp() {
        journal = newJournal();
        payer = journal.payerKey(() -> PaymentKeyPair.generate(RANDOM));
    }

    protected SignedSemiChannel sign(ChannelId id, long seqno, long sent) {
        return payer.sign(new SemiChannelState(id, new SemiChannelBody(seqno, sent)));
    }

    @Test
    void payerKey_isGeneratedOnceAndKept() {
        AtomicInteger generated = new AtomicInteger();
        PaymentKeyPair again = journal.payerKey(() -> {
            generated.incrementAndGet();
            return PaymentKeyPair.generate(RANDOM);
        });

        assertThat(again.publicKey()).isEqualTo(payer.publicKey());
        assertThat(generated).hasValue(0);
    }

    @Test
    void open_twice_returnsTheSameChannel() {
        ChannelJournal.Entry first = journal.open(worker, () -> ChannelId.random(RANDOM));
        ChannelJournal.Entry second = journal.open(worker, () -> {
            throw new AssertionError("a payee with a channel gets no new id");
        });

        assertThat(first.last()).isEqualTo(SemiChannelBody.INITIAL);
        assertThat(first.payeeState()).isNull();
        assertThat(second.channelId()).isEqualTo(first.channelId());
        assertThat(journal.open(PaymentKeyPair.generate(RANDOM).publicKey(), () -> ChannelId.random(RANDOM)).channelId())
                .isNotEqualTo(first.channelId());
    }

    @Test
    void closed_thePayeesNextOpenStartsANewChannelFromZero() {
        ChannelId settled = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        journal.signed(sign(settled, 1, 100));

        journal.closed(worker, settled);
        ChannelJournal.Entry next = journal.open(worker, () -> ChannelId.random(RANDOM));

        assertThat(next.channelId()).isNotEqualTo(settled);
        assertThat(next.last()).isEqualTo(SemiChannelBody.INITIAL);
        journal.signed(sign(next.channelId(), 1, 50));
        assertThat(journal.open(worker, () -> null).last()).isEqualTo(new SemiChannelBody(1, 50));
    }

    @Test
    void signed_movesTheLastStateUp() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();

        journal.signed(sign(id, 1, 100));
        journal.signed(sign(id, 2, 100));
        journal.signed(sign(id, 3, 250));

        assertThat(journal.open(worker, () -> null).last()).isEqualTo(new SemiChannelBody(3, 250));
    }

    @Test
    void signed_notExtendingTheLast_isRefusedAndChangesNothing() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        journal.signed(sign(id, 2, 100));

        assertThatThrownBy(() -> journal.signed(sign(id, 2, 150))).as("seqno reused")
                .isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> journal.signed(sign(id, 3, 99))).as("sent down")
                .isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> journal.signed(sign(ChannelId.random(RANDOM), 1, 1))).as("unknown channel")
                .isInstanceOf(IllegalStateException.class);
        assertThat(journal.open(worker, () -> null).last()).isEqualTo(new SemiChannelBody(2, 100));
    }

    @Test
    void payeeState_isKept() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        PaymentKeyPair workerKey = PaymentKeyPair.generate(RANDOM);
        SignedSemiChannel initial = workerKey.sign(new SemiChannelState(id, SemiChannelBody.INITIAL));

        journal.payeeState(initial);

        assertThat(journal.open(worker, () -> null).payeeState().boc()).isEqualTo(initial.boc());
    }

    @Test
    void openChannels_listsEveryChannelNotClosed_withItsLastStateAndContract() {
        PaymentPublicKey offChain = PaymentKeyPair.generate(RANDOM).publicKey();
        PaymentPublicKey closing = PaymentKeyPair.generate(RANDOM).publicKey();
        ChannelId bound = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        ChannelId unbound = journal.open(offChain, () -> ChannelId.random(RANDOM)).channelId();
        ChannelId closed = journal.open(closing, () -> ChannelId.random(RANDOM)).channelId();
        ChannelJournal.Contract contract = new ChannelJournal.Contract("0:" + "e1".repeat(32), "0:" + "f1".repeat(32));
        journal.bind(bound, contract);
        journal.signed(sign(bound, 1, 40));
        journal.signed(sign(unbound, 1, 15));
        journal.closed(closing, closed);

        assertThat(journal.openChannels()).extracting(ChannelJournal.Entry::channelId).containsExactlyInAnyOrder(bound, unbound);
        ChannelJournal.Entry entry = journal.openChannels().stream().filter(e -> e.channelId().equals(bound)).findFirst()
                .orElseThrow();
        assertThat(entry.payeeKey()).isEqualTo(worker);
        assertThat(entry.last()).isEqualTo(new SemiChannelBody(1, 40));
        assertThat(entry.contract()).isEqualTo(contract);
        assertThat(journal.open(worker, () -> null).contract()).isEqualTo(contract);
        assertThat(journal.openChannels().stream().filter(e -> e.channelId().equals(unbound)).findFirst().orElseThrow()
                .contract()).isNull();
    }

    @Test
    void replace_opensTheNextChannel_whileTheReplacedOneStaysOpenUntilItsClose() {
        ChannelId old = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        ChannelJournal.Contract contract = new ChannelJournal.Contract("0:" + "c1".repeat(32), "0:" + "d1".repeat(32));
        journal.bind(old, contract);
        journal.signed(sign(old, 3, 300));

        ChannelJournal.Entry next = journal.replace(worker, old, () -> ChannelId.random(RANDOM));

        assertThat(next.channelId()).isNotEqualTo(old);
        assertThat(next.last()).isEqualTo(SemiChannelBody.INITIAL);
        assertThat(next.contract()).isNull();
        assertThat(journal.open(worker, () -> null).channelId()).as("the current channel").isEqualTo(next.channelId());
        assertThat(journal.replace(worker, old, () -> null).channelId()).as("a retried replace").isEqualTo(next.channelId());
        assertThat(journal.openChannels()).extracting(ChannelJournal.Entry::channelId).containsExactly(old, next.channelId());
        journal.signed(sign(old, 4, 320));  // the replaced channel pays what still runs on it
        journal.signed(sign(next.channelId(), 1, 10));
        assertThat(journal.openChannels().getFirst().last()).isEqualTo(new SemiChannelBody(4, 320));
        assertThat(journal.openChannels().getFirst().contract()).isEqualTo(contract);

        journal.closed(worker, old);
        assertThat(journal.openChannels()).extracting(ChannelJournal.Entry::channelId).containsExactly(next.channelId());
        assertThat(journal.open(worker, () -> null).last()).isEqualTo(new SemiChannelBody(1, 10));
    }

    @Test
    void closedChannel_isReadBackAsItWasClosed_forItsPayeeOnly() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        ChannelJournal.Contract contract = new ChannelJournal.Contract("0:" + "c3".repeat(32), "0:" + "d3".repeat(32));
        journal.bind(id, contract);
        journal.signed(sign(id, 5, 700));
        assertThat(journal.closedChannel(worker, id)).as("still open").isEmpty();

        journal.closed(worker, id);

        assertThat(journal.closedChannel(worker, id)).hasValueSatisfying(entry -> {
            assertThat(entry.channelId()).isEqualTo(id);
            assertThat(entry.last()).isEqualTo(new SemiChannelBody(5, 700));
            assertThat(entry.contract()).isEqualTo(contract);
        });
        assertThat(journal.closedChannel(PaymentKeyPair.generate(RANDOM).publicKey(), id)).as("another payee").isEmpty();
        assertThat(journal.closedChannel(worker, ChannelId.random(RANDOM))).isEmpty();
    }

    @Test
    void closedTotals_countEachPayeesClosedChannels_andSumTheirLastStates() {
        assertThat(journal.closedTotals()).isEmpty();
        ChannelId first = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        journal.signed(sign(first, 3, 700));
        ChannelId second = journal.replace(worker, first, () -> ChannelId.random(RANDOM)).channelId();
        journal.signed(sign(second, 1, 50));
        PaymentPublicKey other = PaymentKeyPair.generate(RANDOM).publicKey();
        ChannelId others = journal.open(other, () -> ChannelId.random(RANDOM)).channelId();
        journal.signed(sign(others, 2, 90));
        journal.closed(worker, first);
        journal.closed(other, others);
        ChannelId third = journal.replace(worker, second, () -> ChannelId.random(RANDOM)).channelId();
        journal.closed(worker, second);

        assertThat(journal.closedTotals()).containsOnly(
                Map.entry(worker, new ChannelJournal.ClosedTotals(2, 750)),
                Map.entry(other, new ChannelJournal.ClosedTotals(1, 90)));
        assertThat(journal.openChannels()).extracting(ChannelJournal.Entry::channelId).containsExactly(third);
    }

    @Test
    void replace_ofAChannelTheJournalDoesNotHoldForThatPayee_isRefused() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        PaymentPublicKey other = PaymentKeyPair.generate(RANDOM).publicKey();

        assertThatThrownBy(() -> journal.replace(other, id, () -> ChannelId.random(RANDOM))).as("another payee's channel")
                .isInstanceOf(IllegalStateException.class);
        journal.closed(worker, id);
        assertThatThrownBy(() -> journal.replace(worker, id, () -> ChannelId.random(RANDOM))).as("a closed channel")
                .isInstanceOf(IllegalStateException.class);
        assertThat(journal.openChannels()).isEmpty();
    }

    @Test
    void closed_ofAReplacedChannel_leavesTheCurrentOne() {
        ChannelId old = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        ChannelId next = journal.replace(worker, old, () -> ChannelId.random(RANDOM)).channelId();

        journal.closed(worker, next);  // the new one settled first (an uncooperative close), the old still open
        ChannelJournal.Entry third = journal.open(worker, () -> ChannelId.random(RANDOM));

        assertThat(third.channelId()).isNotIn(old, next);
        assertThat(journal.openChannels()).extracting(ChannelJournal.Entry::channelId).containsExactly(old, third.channelId());
    }

    @Test
    void bind_theFirstContractStaysBound_untilTheChannelIsClosed() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        ChannelJournal.Contract first = new ChannelJournal.Contract("0:" + "a1".repeat(32), "0:" + "b1".repeat(32));
        ChannelJournal.Contract other = new ChannelJournal.Contract("0:" + "a2".repeat(32), "0:" + "b2".repeat(32));

        assertThat(journal.bind(id, first)).isEqualTo(first);
        assertThat(journal.bind(id, other)).as("another payout address under the same channel id").isEqualTo(first);
        assertThat(journal.bind(id, first)).isEqualTo(first);

        journal.closed(worker, id);
        assertThatThrownBy(() -> journal.bind(id, other)).as("a closed channel is bound to nothing new")
                .isInstanceOf(IllegalStateException.class);
        ChannelId next = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        assertThat(journal.bind(next, other)).as("the payee's next channel may pay elsewhere").isEqualTo(other);
    }
}
