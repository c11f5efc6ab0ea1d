package org.cocoonjvm.billing.ledger;

class PostgresAccountBookTest extends JdbcAccountBookContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
