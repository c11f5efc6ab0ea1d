package org.cocoonjvm.billing.ledger;

class PostgresClusterLeaseTest extends ClusterLeaseContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }

    @Override
    protected boolean exclusive() {
        return false;
    }
}
