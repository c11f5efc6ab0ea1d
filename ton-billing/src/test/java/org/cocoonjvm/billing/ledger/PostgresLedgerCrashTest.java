package org.cocoonjvm.billing.ledger;

class PostgresLedgerCrashTest extends LedgerCrashContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.POSTGRES;
    }
}
