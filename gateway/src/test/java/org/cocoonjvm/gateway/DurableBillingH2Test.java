package org.cocoonjvm.gateway;

import org.cocoonjvm.billing.ledger.TestDatabase;

class DurableBillingH2Test extends DurableBillingContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
