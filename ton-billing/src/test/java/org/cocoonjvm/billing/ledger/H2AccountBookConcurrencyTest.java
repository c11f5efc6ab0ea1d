package org.cocoonjvm.billing.ledger;

class H2AccountBookConcurrencyTest extends JdbcAccountBookConcurrencyContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
