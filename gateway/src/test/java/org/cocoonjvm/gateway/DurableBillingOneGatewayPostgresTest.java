package org.cocoonjvm.gateway;

import org.cocoonjvm.billing.ledger.TestDatabase;

class DurableBillingOneGatewayPostgresTest extends DurableBillingOneGatewayContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
