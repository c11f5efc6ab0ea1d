package org.cocoonjvm.billing.ledger;

import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class H2AccountBookTest extends JdbcAccountBookContract {
    @Override
    protected TestDatabase database() {
        return TestDatabase.H2;
    }

    /** So that a kill leaves H2 no open transactions to end at its next start (JdbcAccountBook#open says why). */
    @Test
    void anEmbeddedDatabaseIsReachedThroughOneConnection_whateverThePoolSize() {
        try (JdbcAccountBook book = JdbcAccountBook.open(database().newDatabaseUrl(), Clock.systemUTC(), 8)) {
            long sessions = book.tx("count sessions", c -> {
                try (Statement st = c.createStatement();
                     ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM INFORMATION_SCHEMA.SESSIONS")) {
                    rs.next();
                    return rs.getLong(1);
                }
            });
            assertThat(sessions).isEqualTo(1);
        }
    }
}
