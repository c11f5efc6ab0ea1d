package org.cocoonjvm.billing.ledger;

class PostgresChannelJournalTest extends JdbcChannelJournalContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
