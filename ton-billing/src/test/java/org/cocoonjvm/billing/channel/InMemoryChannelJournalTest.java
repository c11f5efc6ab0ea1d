package org.cocoonjvm.billing.channel;

class InMemoryChannelJournalTest extends ChannelJournalContract {
    @Override
    protected ChannelJournal newJournal() {
        return new InMemoryChannelJournal();
    }
}
