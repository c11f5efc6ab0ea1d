package org.cocoonjvm.billing.ledger;

class H2ClusterRecoveryTest extends ClusterRecoveryContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
