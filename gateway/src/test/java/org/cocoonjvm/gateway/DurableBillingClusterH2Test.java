package org.cocoonjvm.gateway;

import org.cocoonjvm.billing.ledger.TestDatabase;

class DurableBillingClusterH2Test extends DurableBillingClusterContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
