package org.cocoonjvm.billing.ledger;

class PostgresClusterLedgerTest extends ClusterLedgerContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }

    @Override
    protected boolean exclusive() {
        return false;
    }
}
