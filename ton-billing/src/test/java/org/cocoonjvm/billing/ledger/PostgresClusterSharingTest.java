package org.cocoonjvm.billing.ledger;

class PostgresClusterSharingTest extends ClusterSharingContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
