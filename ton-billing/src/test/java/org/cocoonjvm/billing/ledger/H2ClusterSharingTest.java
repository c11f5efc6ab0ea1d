package org.cocoonjvm.billing.ledger;

class H2ClusterSharingTest extends ClusterSharingContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
