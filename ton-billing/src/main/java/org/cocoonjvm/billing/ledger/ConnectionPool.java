package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A fixed number of connections to one database, each lent to one transaction at a time. Small on
 * purpose: the ledger's transactions are a few statements on one account row, so throughput comes
 * from short transactions, not from many connections; callers beyond the pool size wait.
 *
 * <p>A database restart or failover kills every connection at once, and a pool finds that out
 * only by using them. So a connection lost in use is dropped, not given back (its slot opens a new
 * one when next lent, which fails at once while the database is still down), and the loss marks
 * every other connection as suspect: each is checked ({@link Connection#isValid}) once before it is
 * lent again. After an outage, callers get live connections instead of one error per pooled
 * connection. A healthy database costs no check: connections are checked only after a loss.
 */
final class ConnectionPool implements AutoCloseable {
    private static final long BORROW_TIMEOUT_MS = 30_000;
    private static final int VALID_TIMEOUT_SECONDS = 2;

    private final String url;
    private final int isolation;
    /** Slots not lent out; a slot may be empty (its connection was lost), and is filled when lent. */
    private final BlockingQueue<Slot> idle;
    private final List<Slot> slots = new ArrayList<>();
    /**
     * One more at each lost connection. A slot whose connection was last known good at an earlier
     * value was open when the database went away: it is checked before it is lent.
     */
    private final AtomicLong losses = new AtomicLong();
    private volatile boolean closed;

    /** One connection's place in the pool, lent with it. */
    static final class Slot {
        private volatile Connection connection;
        /** {@link #losses} when this connection was opened or last checked. */
        private long checkedAt;
        /** Whether it is lent out, and since when ({@link System#nanoTime}): what {@link #longestLent} reads. */
        private volatile boolean lent;
        private volatile long lentAtNanos;

        Connection connection() {
            return connection;
        }
    }

    /** Opens every connection now: a database that cannot be reached fails the start, not the first request. */
    ConnectionPool(String url, int isolation, int size) throws SQLException {
        if (size < 1) {
            throw new IllegalArgumentException("a pool needs at least one connection, got " + size);
        }
        this.url = url;
        this.isolation = isolation;
        this.idle = new ArrayBlockingQueue<>(size);
        try {
            for (int i = 0; i < size; i++) {
                Slot slot = new Slot();
                slot.connection = connect();
                slots.add(slot);
                idle.add(slot);
            }
        } catch (SQLException e) {
            close();
            throw e;
        }
    }

    private Connection connect() throws SQLException {
        Connection c = DriverManager.getConnection(url);
        try {
            c.setTransactionIsolation(isolation);
            c.setAutoCommit(false);
        } catch (SQLException e) {
            closeQuietly(c);
            throw e;
        }
        return c;
    }

    /**
     * A slot with a live connection (as far as the last loss tells): opened now if its last one was
     * lost, checked first if it was open when a connection was last lost.
     *
     * @throws SQLException when no slot is free in time, or the database cannot be reached (then
     *                      the slot goes back empty)
     */
    Slot borrow() throws SQLException {
        if (closed) {
            throw new SQLException("the ledger is closed", "08003");
        }
        Slot slot;
        try {
            slot = idle.poll(BORROW_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLException("interrupted waiting for a ledger connection", "08001", e);
        }
        if (slot == null) {
            throw new SQLException("no ledger connection free for " + BORROW_TIMEOUT_MS + " ms", "08001");
        }
        slot.lentAtNanos = System.nanoTime();
        slot.lent = true;  // from here: checking or opening its connection can hang as a transaction can
        try {
            long now = losses.get();
            if (slot.connection != null && slot.checkedAt < now && !slot.connection.isValid(VALID_TIMEOUT_SECONDS)) {
                drop(slot);
            }
            if (slot.connection == null) {
                slot.connection = connect();
            }
            slot.checkedAt = now;
            return slot;
        } catch (SQLException | RuntimeException e) {
            drop(slot);
            slot.lent = false;
            idle.add(slot);
            throw e;
        }
    }

    /**
     * How long the connection lent out longest has been out, empty when none is: a transaction of
     * a few statements on one row that has not come back after seconds is one the database left
     * unanswered. Cheap: reads a field per slot.
     */
    Optional<Duration> longestLent() {
        long now = System.nanoTime();
        long longest = -1;
        for (Slot slot : slots) {
            // lent before lentAtNanos, the reverse of borrow's writes: a slot lent again between
            // the two reads then shows its new lend's time, not the idle time before it as a stall.
            if (slot.lent) {
                longest = Math.max(longest, now - slot.lentAtNanos);
            }
        }
        return longest < 0 ? Optional.empty() : Optional.of(Duration.ofNanos(longest));
    }

    /**
     * Returns a slot. {@code failure}: what its transaction failed with, null if nothing did. A
     * connection lost (a connection-class failure, or closed under it; another failure is checked,
     * a round trip on a failure path only) is dropped, and every other one becomes suspect.
     */
    void giveBack(Slot slot, SQLException failure) {
        if (failure != null && !closed && slot.connection != null && (lostConnection(failure) || !valid(slot.connection))) {
            losses.incrementAndGet();
            drop(slot);
        }
        slot.lent = false;
        idle.add(slot);
    }

    /**
     * A failure that says the connection is gone, not the transaction: SQLState class 08
     * (connection exception, as the drivers report a refused, reset or closed connection) or
     * PostgreSQL's 57P01 to 57P03 (the server shutting down, crashing or starting up).
     */
    static boolean lostConnection(SQLException e) {
        String state = e.getSQLState();
        return state != null && (state.startsWith("08") || state.equals("57P01") || state.equals("57P02") || state.equals("57P03"));
    }

    private static boolean valid(Connection c) {
        try {
            return c.isValid(VALID_TIMEOUT_SECONDS);
        } catch (SQLException e) {
            return false;
        }
    }

    private void drop(Slot slot) {
        Connection c = slot.connection;
        slot.connection = null;
        if (c != null) {
            closeQuietly(c);
        }
    }

    @Override
    public void close() {
        closed = true;
        slots.forEach(this::drop);
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException ignored) {
            // closing: nothing left to do with it
        }
    }
}
