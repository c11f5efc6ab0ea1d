package org.cocoonjvm.gateway;

import org.cocoonjvm.billing.ledger.TestDatabase;

class DurableBillingClusterPostgresTest extends DurableBillingClusterContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
