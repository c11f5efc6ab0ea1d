package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.LongAdder;

/**
 * The ledger's connection and transaction plumbing: it owns the {@link ConnectionPool}, runs each
 * call as one transaction (retrying lost races and a connection lost before its commit), and
 * keeps what the calls learned about the database's health ({@link #outage()}, {@link #stall()},
 * {@link #racesRunAgain()}). Separate from {@link JdbcAccountBook} so that every part of the book
 * (accounts, reservations, the lease, the channel journal) shares one retry rule and one view of
 * an outage, and none of them handles a connection itself.
 */
final class Transactions {
    /**
     * How long a call may go unanswered before the database counts as hung ({@link #stall}): its
     * transactions are a few statements on one row, milliseconds; seconds of silence are not load.
     */
    static final Duration STALL = Duration.ofSeconds(3);
    /**
     * Lost races a transaction runs again before it gives up. Many requests of one key settle on
     * one account row, and H2 at SERIALIZABLE refuses every loser: with 16 threads on one row on a
     * loaded 2-core CI machine, 8 attempts (about 0.25 s of back-off at most) ran out once and a
     * settlement failed. 16 give up to about 1.3 s.
     */
    private static final int ATTEMPTS = 16;

    private final ConnectionPool pool;
    /** Why the last call could not reach the database; null once one did (see {@link #outage()}). */
    private volatile String outage;
    /** Transactions run again after a lost race, by {@link Dialect#race}. */
    private final Map<String, LongAdder> racesRunAgain = new ConcurrentHashMap<>();

    Transactions(ConnectionPool pool) {
        this.pool = pool;
    }

    @FunctionalInterface
    interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    /**
     * Runs {@code work} in one transaction and commits it. A refusal (any RuntimeException, such as
     * an {@link org.cocoonjvm.billing.accounts.AccountException}) rolls back and propagates; a lost
     * race rolls back and runs again; any other database failure rolls back and becomes a
     * {@link LedgerUnavailableException}.
     *
     * <p>A transaction whose connection was lost before its COMMIT was sent did not happen (the
     * server rolls back what a dead session left open), so it runs once more on another connection:
     * after a database restart the first caller on each connection the restart killed still
     * succeeds. One lost at its COMMIT may have committed, and is never run again from here: the
     * caller hears of the failure, and whatever it retries must be safe to run twice (ending a
     * reservation is: a second end returns the first outcome).
     */
    <T> T tx(String operation, Work<T> work) {
        boolean ranAgainAfterLoss = false;
        for (int attempt = 1; ; attempt++) {
            ConnectionPool.Slot slot;
            try {
                slot = pool.borrow();
            } catch (SQLException e) {
                throw unavailable(operation, e);
            }
            Connection c = slot.connection();
            SQLException failure = null;
            boolean committing = false;
            try {
                T result = work.run(c);
                committing = true;
                c.commit();
                outage = null;
                return result;
            } catch (SQLException e) {
                failure = e;
                rollback(c);
            } catch (RuntimeException e) {
                rollback(c);
                outage = null;   // a refusal: the database answered
                throw e;
            } catch (Error e) {
                rollback(c);
                throw e;
            } finally {
                pool.giveBack(slot, failure);
            }
            if (ConnectionPool.lostConnection(failure) && !committing && !ranAgainAfterLoss) {
                ranAgainAfterLoss = true;
                continue;
            }
            if (!Dialect.retryable(failure) || attempt >= ATTEMPTS) {
                throw unavailable(operation, failure);
            }
            racesRunAgain.computeIfAbsent(Dialect.race(failure), reason -> new LongAdder()).increment();
            backOff(operation, attempt);
        }
    }

    /** The failure to throw; a lost or refused connection also marks the database as unreachable until a call succeeds. */
    private LedgerUnavailableException unavailable(String operation, SQLException cause) {
        LedgerUnavailableException failure = new LedgerUnavailableException(operation, cause);
        if (ConnectionPool.lostConnection(cause)) {
            outage = failure.getMessage();
        }
        return failure;
    }

    /** See {@link JdbcAccountBook#racesRunAgain()}. */
    Map<String, Long> racesRunAgain() {
        Map<String, Long> counts = new TreeMap<>();
        racesRunAgain.forEach((reason, count) -> counts.put(reason, count.sum()));
        return counts;
    }

    /**
     * Why the database is unreachable, as the last call found: set by a call that
     * lost its connection or could not get one, cleared by the next call the database answers
     * (the lease keeper's beat, every few seconds, is one).
     */
    Optional<String> outage() {
        return stall().or(() -> Optional.ofNullable(outage));
    }

    /**
     * A call out longer than {@link #STALL}: the database hangs (a frozen primary, a partition)
     * rather than refuses, which the driver's socket time limit ends only after 10 s, and a
     * failover's hang lasts as long as the failover (audit N, N-1).
     */
    Optional<String> stall() {
        return pool.longestLent().filter(out -> out.compareTo(STALL) > 0)
                .map(out -> "the ledger's database has left a call unanswered for " + out.toMillis() + " ms");
    }

    /** Closes the pool: the last thing the book's close does. */
    void close() {
        pool.close();
    }

    /**
     * Waits a random while before running a lost race again, longer after each loss: transactions
     * that collided and retried at once (H2 at SERIALIZABLE refuses every loser) would mostly
     * collide again and use up their attempts.
     */
    private static void backOff(String operation, int attempt) {
        try {
            Thread.sleep(ThreadLocalRandom.current().nextLong(1, 1L << Math.min(attempt + 1, 7)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LedgerUnavailableException(operation, new SQLException("interrupted before a retry", "08001", e));
        }
    }

    private static void rollback(Connection c) {
        try {
            c.rollback();
        } catch (SQLException ignored) {
            // the connection is broken; the pool drops it when it comes back
        }
    }
}
