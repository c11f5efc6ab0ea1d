package org.cocoonjvm.billing.ledger;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.ChannelJournalContract;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** {@link ChannelJournalContract} on a real database, plus a restart: what a restarted gateway finds. */
abstract class JdbcChannelJournalContract extends ChannelJournalContract {
    private final List<JdbcAccountBook> opened = new ArrayList<>();
    private String url;

    protected abstract TestDatabase database();

    @Override
    protected ChannelJournal newJournal() {
        url = database().newDatabaseUrl();
        return open();
    }

    private ChannelJournal open() {
        JdbcAccountBook ledger = JdbcAccountBook.open(url, Clock.systemUTC(), 2);
        opened.add(ledger);
        return ledger.channelJournal();
    }

    @AfterEach
    void closeLedgers() {
        opened.forEach(JdbcAccountBook::close);
    }

    @Test
    void aRestartedPayer_keepsItsKeyAndChannelsAndSignsAboveTheJournal() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        journal.signed(sign(id, 1, 100));
        journal.signed(sign(id, 2, 175));
        opened.forEach(JdbcAccountBook::close);

        ChannelJournal restarted = open();
        PaymentKeyPair key = restarted.payerKey(() -> {
            throw new AssertionError("the stored key is used");
        });
        ChannelJournal.Entry entry = restarted.open(worker, () -> {
            throw new AssertionError("the stored channel is used");
        });
        ChannelPayer payer = new ChannelPayer(new ChannelTerms(entry.channelId(), key.publicKey(), 1_000), key, entry.last());
        restarted.signed(payer.pay(200));

        assertThat(key.publicKey()).isEqualTo(this.payer.publicKey());
        assertThat(entry.channelId()).isEqualTo(id);
        assertThat(restarted.open(worker, () -> null).last()).isEqualTo(new SemiChannelBody(3, 200));
    }

    @Test
    void aRestartedPayer_findsAReplacedChannelStillOpen_besideThePayeesCurrentOne() {
        ChannelId old = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        journal.signed(sign(old, 2, 500));
        ChannelId next = journal.replace(worker, old, () -> ChannelId.random(RANDOM)).channelId();
        opened.forEach(JdbcAccountBook::close);

        ChannelJournal restarted = open();

        assertThat(restarted.openChannels()).extracting(ChannelJournal.Entry::channelId).containsExactly(old, next);
        assertThat(restarted.open(worker, () -> {
            throw new AssertionError("the current channel is kept");
        }).channelId()).isEqualTo(next);
        restarted.closed(worker, old);
        assertThat(restarted.openChannels()).extracting(ChannelJournal.Entry::channelId).containsExactly(next);
        opened.forEach(JdbcAccountBook::close);
        assertThat(open().closedTotals()).as("after another restart")
                .containsOnly(Map.entry(worker, new ChannelJournal.ClosedTotals(1, 500)));
    }

    @Test
    void aRestartedPayer_keepsEachChannelBoundToItsContract() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        ChannelJournal.Contract bound = new ChannelJournal.Contract("0:" + "c1".repeat(32), "0:" + "d1".repeat(32));
        journal.bind(id, bound);
        opened.forEach(JdbcAccountBook::close);

        ChannelJournal restarted = open();

        assertThat(restarted.bind(id, new ChannelJournal.Contract("0:" + "c2".repeat(32), "0:" + "d2".repeat(32))))
                .isEqualTo(bound);
        assertThat(restarted.openChannels()).singleElement().satisfies(e -> {
            assertThat(e.channelId()).isEqualTo(id);
            assertThat(e.contract()).isEqualTo(bound);
        });
    }

    /**
     * A gateway killed between a round's checkpoint and its signature: the ledger bills the client
     * usage whose worker fee no state carries. The restarted payer learns every fee the ledger
     * bills on the channel (settled requests by their audit record, recovered ones by their last
     * checkpoint), each once, and none of another channel's.
     */
    @Test
    void aRestartedPayer_learnsTheWorkerFeesTheLedgerBillsOnTheChannel_signedOrNot() {
        ChannelId id = journal.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        String other = ChannelId.random(RANDOM).hex();
        JdbcAccountBook ledger = opened.get(0);
        ledger.open("acct");
        ledger.credit("acct", 10_000, "grant");
        Reservation finished = ledger.reserve("acct", 500);
        Reservation cut = ledger.reserve("acct", 500);
        Reservation elsewhere = ledger.reserve("acct", 500);
        Reservation unmetered = ledger.reserve("acct", 500);
        Reservation quick = ledger.reserve("acct", 500);
        ledger.settle(quick, new RequestRecord("r0", "w1", null, "m", new TokenCounts(2, 0, 2, 0), 8, 4));
        ledger.recordProgress(Map.of(quick, 8L), Map.of(quick, new WorkerShare(id.hex(), 4, null, null)));   // settled first
        ledger.recordProgress(Map.of(finished, 60L, cut, 80L, elsewhere, 50L),
                Map.of(finished, new WorkerShare(id.hex(), 30, null, null), cut, new WorkerShare(id.hex(), 40, null, null),
                        elsewhere, new WorkerShare(other, 25, null, null)));
        journal.signed(sign(id, 1, 70));
        ledger.settle(finished, new RequestRecord("r1", "w1", id.hex(), "m", new TokenCounts(10, 0, 40, 0), 100, 50));
        ledger.recordProgress(Map.of(cut, 120L), Map.of(cut, new WorkerShare(id.hex(), 60, null, null)));   // then killed
        opened.forEach(JdbcAccountBook::close);

        JdbcAccountBook restarted = JdbcAccountBook.open(url, Clock.systemUTC(), 2);
        opened.add(restarted);
        restarted.recoverOpenReservations();
        ChannelJournal.Entry entry = restarted.channelJournal().open(worker, () -> {
            throw new AssertionError("the stored channel is used");
        });

        assertThat(entry.last()).isEqualTo(new SemiChannelBody(1, 70));
        assertThat(entry.feesBilledNanoton()).as("the finished requests' audited fees + the cut one's last checkpoint")
                .isEqualTo(4 + 50 + 60);
        assertThat(restarted.balance("acct").spentNanoton()).as("billed: 8 + 100 + 120 + 50, nothing for the unmetered one")
                .isEqualTo(8 + 100 + 120 + 50);
        assertThat(unmetered.amountNanoton()).isEqualTo(500);
    }
}
