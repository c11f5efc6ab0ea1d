package org.cocoonjvm.billing.ledger;

/** Where ledger tests get empty databases: H2 files in a temp dir, or a PostgreSQL server of their own. */
public interface TestDatabase {
    /** A JDBC URL to a new, empty database. */
    String newDatabaseUrl();

    /** What the reports call it. */
    String name();

    TestDatabase H2 = new TestDatabase() {
        @Override
        public String newDatabaseUrl() {
            return H2Files.newDatabaseUrl();
        }

        @Override
        public String name() {
            return "H2";
        }
    };

    /** Skips the calling test (JUnit assumption) when this machine has no PostgreSQL binaries. */
    TestDatabase POSTGRES = new TestDatabase() {
        @Override
        public String newDatabaseUrl() {
            return PostgresServer.shared().newDatabaseUrl();
        }

        @Override
        public String name() {
            return "PostgreSQL";
        }
    };
}
