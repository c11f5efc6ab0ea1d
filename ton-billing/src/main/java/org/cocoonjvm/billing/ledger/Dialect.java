package org.cocoonjvm.billing.ledger;

import java.sql.SQLException;
import java.util.Locale;
import java.util.Set;

/**
 * The few places where H2 and PostgreSQL differ for the ledger, in one file. The SQL itself is
 * the same for both (identity columns, {@code SELECT ... FOR UPDATE}, {@code CREATE TABLE IF NOT
 * EXISTS} and SQLState 23505 for a unique violation are common to both).
 */
enum Dialect {
    H2, POSTGRESQL;

    /**
     * A transaction that lost a race and may simply run again: PostgreSQL's serialization failure
     * and deadlock, H2's lock timeout (it gives up waiting for a row lock after one second by
     * default, where PostgreSQL waits), and a unique violation (another transaction inserted the
     * same key first; running again finds its row).
     */
    private static final Set<String> RETRYABLE = Set.of("40001", "40P01", "HYT00", "23505");

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

    static boolean retryable(SQLException e) {
        return RETRYABLE.contains(e.getSQLState());
    }

    /**
     * The URL to connect with. An H2 file database keeps a commit in memory for up to half a second
     * before writing it (WRITE_DELAY); a ledger must not acknowledge what a killed process can lose,
     * so commits are written at once unless the URL says otherwise. PostgreSQL URLs pass unchanged:
     * its commits are durable by default.
     */
    String connectUrl(String url) {
        if (this == H2 && !url.startsWith("jdbc:h2:mem:") && !url.toUpperCase(Locale.ROOT).contains(";WRITE_DELAY=")) {
            return url + ";WRITE_DELAY=0";
        }
        return url;
    }
}
