package org.cocoonjvm.billing.ledger;

class PostgresClusterLedgerTest extends ClusterLedgerContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
