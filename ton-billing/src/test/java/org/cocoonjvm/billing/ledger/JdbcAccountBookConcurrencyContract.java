package org.cocoonjvm.billing.ledger;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountBookConcurrencyContract;
import org.junit.jupiter.api.AfterEach;

/** The concurrency contract on a real database, with 16 threads sharing a pool of 8 connections. */
abstract class JdbcAccountBookConcurrencyContract extends AccountBookConcurrencyContract {
    private final List<JdbcAccountBook> opened = new ArrayList<>();

    protected abstract TestDatabase database();

    @Override
    protected AccountBook newBook(Clock clock) {
        JdbcAccountBook book = JdbcAccountBook.open(database().newDatabaseUrl(), clock, 8);
        opened.add(book);
        return book;
    }

    @Override
    protected int rounds() {
        return 150;
    }

    @Override
    protected int raceTrials() {
        return 25;
    }

    @AfterEach
    void closeBooks() {
        opened.forEach(JdbcAccountBook::close);
    }
}
