package org.cocoonjvm.billing.accounts;

import java.time.Clock;

class InMemoryAccountBookConcurrencyTest extends AccountBookConcurrencyContract {

    @Override
    protected AccountBook newBook(Clock clock) {
        return new InMemoryAccountBook(clock);
    }

    @Override
    protected int rounds() {
        return 20_000;
    }

    @Override
    protected int raceTrials() {
        return 200;
    }
}
