package org.cocoonjvm.billing.ledger;

class PostgresClusterRecoveryTest extends ClusterRecoveryContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
