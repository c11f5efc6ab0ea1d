package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.Locale;
import java.util.Set;

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
     * SERIALIZABLE, H2 refuses such a write (40001 or 90131, retried) instead of losing one.
     */
    int isolation() {
        return this == H2 ? Connection.TRANSACTION_SERIALIZABLE : Connection.TRANSACTION_READ_COMMITTED;
    }

    static boolean retryable(SQLException e) {
        return RETRYABLE.contains(e.getSQLState());
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
