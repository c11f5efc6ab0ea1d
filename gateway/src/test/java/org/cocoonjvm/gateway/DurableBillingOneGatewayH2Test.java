package org.cocoonjvm.gateway;

import org.cocoonjvm.billing.ledger.TestDatabase;

class DurableBillingOneGatewayH2Test extends DurableBillingOneGatewayContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
