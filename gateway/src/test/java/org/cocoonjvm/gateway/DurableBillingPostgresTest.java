package org.cocoonjvm.gateway;

import org.cocoonjvm.billing.ledger.TestDatabase;

class DurableBillingPostgresTest extends DurableBillingContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
