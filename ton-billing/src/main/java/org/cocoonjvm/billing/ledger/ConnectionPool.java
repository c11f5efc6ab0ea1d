package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A fixed set of connections to one database, each lent to one transaction at a time. Small on
 * purpose: the ledger's transactions are a few statements on one account row, so throughput comes
 * from short transactions, not from many connections; callers beyond the pool size wait.
 */
final class ConnectionPool implements AutoCloseable {
    private static final long BORROW_TIMEOUT_MS = 30_000;

    private final String url;
    private final int isolation;
    private final BlockingQueue<Connection> idle;
    private final List<Connection> all = new ArrayList<>();
    private volatile boolean closed;

    ConnectionPool(String url, int isolation, int size) throws SQLException {
        if (size < 1) {
            throw new IllegalArgumentException("a pool needs at least one connection, got " + size);
        }
        this.url = url;
        this.isolation = isolation;
        this.idle = new ArrayBlockingQueue<>(size);
        try {
            for (int i = 0; i < size; i++) {
                Connection c = connect();
                all.add(c);
                idle.add(c);
            }
        } catch (SQLException e) {
            close();
            throw e;
        }
    }

    private Connection connect() throws SQLException {
        Connection c = DriverManager.getConnection(url);
        c.setTransactionIsolation(isolation);
        c.setAutoCommit(false);
        return c;
    }

    Connection borrow() throws SQLException {
        if (closed) {
            throw new SQLException("the ledger is closed", "08003");
        }
        try {
            Connection c = idle.poll(BORROW_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            if (c == null) {
                throw new SQLException("no ledger connection free for " + BORROW_TIMEOUT_MS + " ms", "08001");
            }
            return c;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLException("interrupted waiting for a ledger connection", "08001", e);
        }
    }

    /**
     * Returns a connection. One whose transaction failed in the database ({@code suspect}) is
     * checked, and replaced if it broke; a healthy path pays no extra round trip.
     */
    void giveBack(Connection c, boolean suspect) {
        Connection back = c;
        try {
            if (suspect && !closed && !c.isValid(2)) {
                back = connect();
                synchronized (all) {
                    all.remove(c);
                    all.add(back);
                }
                closeQuietly(c);
            }
        } catch (SQLException reconnectFailed) {
            back = c;   // the database is down; the next borrower gets the error, and we try again then
        }
        idle.add(back);
    }

    @Override
    public void close() {
        closed = true;
        synchronized (all) {
            all.forEach(ConnectionPool::closeQuietly);
        }
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException ignored) {
            // closing: nothing left to do with it
        }
    }
}
