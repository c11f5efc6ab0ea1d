package org.cocoonjvm.billing.ledger;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.ChannelJournalContract;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
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
}
