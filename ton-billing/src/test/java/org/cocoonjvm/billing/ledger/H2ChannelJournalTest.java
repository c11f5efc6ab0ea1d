package org.cocoonjvm.billing.ledger;

class H2ChannelJournalTest extends JdbcChannelJournalContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
