package org.cocoonjvm.billing.ledger;

class PostgresAccountBookConcurrencyTest extends JdbcAccountBookConcurrencyContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
