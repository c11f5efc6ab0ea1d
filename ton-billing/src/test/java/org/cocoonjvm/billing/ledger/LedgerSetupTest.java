package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import org.junit.jupiter.api.Test;

/** Opening a ledger: what URLs it takes, how it reports a database it cannot reach, how scripts split. */
class LedgerSetupTest {

    @Test
    void open_anUnsupportedDatabase_shouldThrowNamingTheChoices() {
        assertThatThrownBy(() -> JdbcAccountBook.open("jdbc:sqlite:ledger.db", Clock.systemUTC()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("jdbc:h2:").hasMessageContaining("jdbc:postgresql:");
    }

    @Test
    void open_anUnreachableServer_shouldThrowWithoutThePassword() {
        assertThatThrownBy(() -> JdbcAccountBook.open("jdbc:postgresql://127.0.0.1:1/ledger?user=u&password=hunter2&connectTimeout=2",
                Clock.systemUTC(), 1))
                .isInstanceOf(LedgerUnavailableException.class)
                .hasMessageContaining("password=***")
                .hasMessageNotContaining("hunter2");
    }

    @Test
    void urls_h2WritesEachCommitAtOnceAndStaysOpenThroughShutdown_postgresqlGetsTimeLimits_unlessTheUrlSaysOtherwise() {
        assertThat(Dialect.H2.connectUrl("jdbc:h2:file:/tmp/l")).isEqualTo("jdbc:h2:file:/tmp/l;WRITE_DELAY=0;DB_CLOSE_ON_EXIT=FALSE");
        assertThat(Dialect.H2.connectUrl("jdbc:h2:file:/tmp/l;write_delay=100;db_close_on_exit=true"))
                .isEqualTo("jdbc:h2:file:/tmp/l;write_delay=100;db_close_on_exit=true");
        assertThat(Dialect.H2.connectUrl("jdbc:h2:mem:x")).isEqualTo("jdbc:h2:mem:x;DB_CLOSE_ON_EXIT=FALSE");
        assertThat(Dialect.POSTGRESQL.connectUrl("jdbc:postgresql://h/db")).isEqualTo("jdbc:postgresql://h/db?connectTimeout=5&socketTimeout=10&loginTimeout=10");
        assertThat(Dialect.POSTGRESQL.connectUrl("jdbc:postgresql://h/db?user=u&socketTimeout=2"))
                .isEqualTo("jdbc:postgresql://h/db?user=u&socketTimeout=2&connectTimeout=5&loginTimeout=10");
    }

    @Test
    void statements_splitAtLineEndingSemicolons_andDropCommentLines() {
        assertThat(Migrations.statements("-- a table\nCREATE TABLE a (x INT);\n\n-- two\nCREATE INDEX i ON a (x);\n"))
                .containsExactly("CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)");
    }
}
