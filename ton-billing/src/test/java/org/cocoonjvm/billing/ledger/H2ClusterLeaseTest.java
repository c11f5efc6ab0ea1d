package org.cocoonjvm.billing.ledger;

class H2ClusterLeaseTest extends ClusterLeaseContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }

    @Override
    protected boolean exclusive() {
        return true;
    }
}
