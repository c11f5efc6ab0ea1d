package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The few places where H2 and PostgreSQL differ for the ledger, in one file. The SQL itself is
 * the same for both (identity columns, {@code SELECT ... FOR UPDATE}, {@code CREATE TABLE IF NOT
 * EXISTS} and SQLState 23505 for a unique violation are common to both).
 */
enum Dialect {
    H2, POSTGRESQL;

    static final int PG_CONNECT_TIMEOUT_SECONDS = 5;
    static final int PG_SOCKET_TIMEOUT_SECONDS = 10;
    static final int PG_LOGIN_TIMEOUT_SECONDS = 10;

    /**
     * A transaction that lost a race and may simply run again: a serialization failure or deadlock
     * (both databases report 40001; PostgreSQL also 40P01), H2's concurrent update (90131, its
     * serializable isolation's refusal to write over a row changed since the transaction began),
     * H2's lock timeout (it gives up waiting for a row lock after one second by default, where
     * PostgreSQL waits), and a unique violation (another transaction inserted the same key first;
     * running again finds its row).
     */
    private static final Set<String> RETRYABLE = Set.of("40001", "40P01", "90131", "HYT00", "23505");

    /** PostgreSQL's advisory lock key for {@link #lockMigrations}: fixed, so every build of the ledger takes the same one. */
    private static final long MIGRATION_LOCK_KEY = 0x636f636f6f6e4d47L;   // "cocoonMG"
    /** A migration's wait for another's lock, between tries: a migration of an empty ledger takes well under a second. */
    private static final long MIGRATION_LOCK_POLL_MS = 100;
    /** The H2 side of {@link #lockMigrations}: one per JVM, as migrations are rare and short. */
    private static final ReentrantLock H2_MIGRATIONS = new ReentrantLock();

    /** What {@link #lockMigrations} holds until closed. */
    interface Held extends AutoCloseable {
        @Override
        void close() throws SQLException;
    }

    static Dialect of(String url) {
        if (url != null && url.startsWith("jdbc:h2:")) {
            return H2;
        }
        if (url != null && url.startsWith("jdbc:postgresql:")) {
            return POSTGRESQL;
        }
        throw new IllegalArgumentException("the ledger runs on H2 (jdbc:h2:...) or PostgreSQL (jdbc:postgresql:...), got "
                + url);
    }

    /**
     * The isolation level of every ledger connection. PostgreSQL: READ COMMITTED, where an UPDATE
     * that waited for a row lock re-evaluates its WHERE and SET on the newest committed row. H2
     * 2.3.232 at READ COMMITTED does not, reliably: under load a relative update ({@code SET
     * reserved_nanoton = reserved_nanoton + ?}) or a {@code SELECT ... FOR UPDATE} was computed from
     * a row older than a commit it had waited for, and totals were lost or went negative (reproduced
     * with 32 threads, a pool of 8, on a loaded machine: about one run in four lost an update). At
     * SERIALIZABLE, H2 refuses such a write (40001 or 90131, retried) instead of losing one. (An
     * embedded H2 database now gets one connection, see {@link JdbcAccountBook#open(String,
     * java.time.Clock, int, GatewayId, java.time.Duration, boolean, Runnable, String)}; several
     * connections to an H2 server still need this.)
     */
    int isolation() {
        return this == H2 ? Connection.TRANSACTION_SERIALIZABLE : Connection.TRANSACTION_READ_COMMITTED;
    }

    /**
     * Holds off every other {@link Migrations#apply} on this database until closed: two gateways
     * starting at once on an empty ledger both read version 0 and ran V1, and the second failed on
     * "relation already exists" (audit Q-2). PostgreSQL: a session advisory lock, which outlives
     * the migrations' own commits and goes with the connection if the process dies. It is tried
     * every {@value #MIGRATION_LOCK_POLL_MS} ms rather than waited for in one statement, which the
     * connection's socket timeout would cut while another process runs a long migration. H2: an
     * embedded database is open in one process only, so a lock of this JVM covers every
     * connection that can reach it; several processes on one H2 server are not covered (a ledger
     * shared by several gateways is PostgreSQL).
     */
    Held lockMigrations(Connection c) throws SQLException {
        if (this == H2) {
            H2_MIGRATIONS.lock();
            return H2_MIGRATIONS::unlock;
        }
        try (Statement st = c.createStatement()) {
            while (!answer(st, "SELECT pg_try_advisory_lock(" + MIGRATION_LOCK_KEY + ")")) {
                try {
                    Thread.sleep(MIGRATION_LOCK_POLL_MS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new SQLException("interrupted while waiting for another process's ledger migration", e);
                }
            }
        }
        return () -> {
            try (Statement st = c.createStatement()) {
                answer(st, "SELECT pg_advisory_unlock(" + MIGRATION_LOCK_KEY + ")");
            }
        };
    }

    private static boolean answer(Statement st, String sql) throws SQLException {
        try (ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getBoolean(1);
        }
    }

    static boolean retryable(SQLException e) {
        // Set.of refuses null: ours (a schema newer than this build) carry no state, and were an NPE.
        return e.getSQLState() != null && RETRYABLE.contains(e.getSQLState());
    }

    /** What race a {@link #retryable} failure lost, for operators. */
    static String race(SQLException e) {
        return switch (e.getSQLState()) {
            case "40P01" -> "deadlock";
            case "HYT00" -> "lock_timeout";
            case "23505" -> "duplicate_key";
            default -> "serialization";
        };
    }

    /**
     * The URL to connect with. An H2 file database keeps a commit in memory for up to half a second
     * before writing it (WRITE_DELAY); a ledger must not acknowledge what a killed process can lose,
     * so commits are written at once unless the URL says otherwise. H2 also closes its databases
     * from a JVM shutdown hook of its own (DB_CLOSE_ON_EXIT) the moment a SIGTERM arrives, while the
     * gateway still settles the streams it lets finish: they failed with "database closed" and
     * were billed at their last checkpoint. The ledger's owner closes it after that, so H2 must not.
     * PostgreSQL's commits are durable by default; its URLs get time limits unless they set their
     * own: {@code connectTimeout}, {@code socketTimeout} and {@code loginTimeout} (the driver's
     * defaults are 10 s, none and none; the socket's limit does not cover a new connection's
     * handshake, which hung for as long as the server did: audit N, N-1). A database that stops answering without refusing (a partition, a frozen primary)
     * otherwise held every ledger call, and each request on it, for as long as it hung, with
     * nothing logged and {@code /ready} still 200; past the limit the call fails as a lost
     * connection (SQLState 08), the book reports the outage and the gateway answers 503. The
     * ledger's transactions are a few statements on one row: 10 s of silence is not one of them.
     */
    String connectUrl(String url) {
        if (this == POSTGRESQL) {
            String connect = url;
            for (String limit : List.of("connectTimeout=" + PG_CONNECT_TIMEOUT_SECONDS, "socketTimeout=" + PG_SOCKET_TIMEOUT_SECONDS,
                    "loginTimeout=" + PG_LOGIN_TIMEOUT_SECONDS)) {
                String name = limit.substring(0, limit.indexOf('=') + 1);
                if (!connect.contains("?" + name) && !connect.contains("&" + name)) {
                    connect += (connect.contains("?") ? "&" : "?") + limit;
                }
            }
            return connect;
        }
        String upper = url.toUpperCase(Locale.ROOT);
        String connect = url;
        if (!url.startsWith("jdbc:h2:mem:") && !upper.contains(";WRITE_DELAY=")) {
            connect += ";WRITE_DELAY=0";
        }
        if (!upper.contains(";DB_CLOSE_ON_EXIT=")) {
            connect += ";DB_CLOSE_ON_EXIT=FALSE";
        }
        return connect;
    }
}
