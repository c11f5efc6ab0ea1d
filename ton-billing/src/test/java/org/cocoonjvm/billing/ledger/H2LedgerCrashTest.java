package org.cocoonjvm.billing.ledger;

class H2LedgerCrashTest extends LedgerCrashContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }
}
