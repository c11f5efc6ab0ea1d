package org.cocoonjvm.billing.ledger;

class H2AccountBookTest extends JdbcAccountBookContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
