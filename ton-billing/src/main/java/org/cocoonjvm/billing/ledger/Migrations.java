package org.cocoonjvm.billing.ledger;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;

/**
 * Brings a database to the ledger's current schema. Each migration is a plain {@code .sql} resource
 * beside this class, applied once, in order, in its own transaction, and recorded in
 * {@code schema_version}; the same files serve H2 and PostgreSQL.
 *
 * <p>One difference between the two, and why it is harmless: PostgreSQL runs DDL inside the
 * transaction, so a migration applies wholly or not at all. H2 commits each DDL statement on its
 * own, so a crash in the middle of a migration can leave part of it behind with no
 * {@code schema_version} row. Each migration's first statement creates an object, so the next start
 * fails loudly ("already exists") rather than running on a half-built schema; V1 to V5 only create,
 * so delete the file and start again (an H2 ledger that crashed while being created holds no money
 * yet). V6 also moves the payer key and the channels into per-gateway tables: an H2 ledger killed
 * during that upgrade holds its data in either the old or the new table; restore the file from the
 * backup taken before upgrading (PostgreSQL needs none of this). V7 only adds columns: a half-applied
 * one fails on the column it already added; drop the V7 columns there and start again. V8 rebuilds
 * the channels table as V6 did: an H2 ledger killed during it holds its channels in either
 * {@code channels} or {@code channels_v8}; restore the backup. V9 only creates an index: a
 * half-applied one is not possible (one statement). V10 only adds columns, as V7: drop the V10
 * columns that are there and start again. V11 and V12 add one column each: a half-applied one is not
 * possible. V13 adds two columns: a half-applied one fails on {@code holder_data_dir}; drop it and start
 * again. V14 adds eight columns to {@code reservations}: a half-applied one fails on {@code request_id};
 * drop the V14 columns that are there and start again.
 */
public final class Migrations {
    /** In order; a released migration is never edited, only followed by a new one. */
    static final List<String> ALL = List.of("V1__accounts.sql", "V2__requests.sql", "V3__channels.sql",
            "V4__closed_channels.sql", "V5__worker_fees.sql", "V6__gateways.sql",
            "V7__channel_contracts.sql", "V8__replaced_channels.sql", "V9__credits_by_account.sql",
            "V10__lease_holders.sql", "V11__lease_stopping.sql", "V12__lease_holder_pid_namespace.sql",
            "V13__lease_holder_data_dir.sql", "V14__reservation_requests.sql");

    private Migrations() {
    }

    /** The version of the newest migration. */
    public static int latest() {
        return ALL.size();
    }

    /** Applies what {@code connection}'s database lacks; returns the versions applied now. */
    public static List<Integer> apply(Connection connection, Clock clock) throws SQLException {
        return apply(connection, clock, ALL.size());
    }

    /**
     * Up to version {@code target} only: a test's way to put an older schema's data in front of a migration.
     * Under {@link Dialect#lockMigrations}, so that of two processes starting at once on an older
     * schema, the second waits for the first and then finds nothing left to apply.
     */
    static List<Integer> apply(Connection connection, Clock clock, int target) throws SQLException {
        boolean autoCommit = connection.getAutoCommit();
        connection.setAutoCommit(true);
        try (Dialect.Held migrating = Dialect.of(connection.getMetaData().getURL()).lockMigrations(connection)) {
            try (Statement st = connection.createStatement()) {
                st.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                        + "version INTEGER NOT NULL PRIMARY KEY, "
                        + "script VARCHAR(200) NOT NULL, "
                        + "applied_at_micros BIGINT NOT NULL)");
            }
            int current = current(connection);
            if (current > ALL.size()) {
                throw new SQLException("the ledger's schema is at version " + current + ", newer than this build ("
                        + ALL.size() + "): run a newer gateway");
            }
            connection.setAutoCommit(false);
            return applyAfter(connection, clock, current, target);
        } finally {
            connection.setAutoCommit(autoCommit);
        }
    }

    /** Each migration after {@code current} up to {@code target}, in a transaction of its own. */
    private static List<Integer> applyAfter(Connection connection, Clock clock, int current, int target) throws SQLException {
        List<Integer> applied = new ArrayList<>();
        try {
            for (int version = current + 1; version <= target; version++) {
                String script = ALL.get(version - 1);
                try (Statement st = connection.createStatement()) {
                    for (String sql : statements(read(script))) {
                        st.execute(sql);
                    }
                }
                try (PreparedStatement ps = connection.prepareStatement(
                        "INSERT INTO schema_version (version, script, applied_at_micros) VALUES (?, ?, ?)")) {
                    ps.setInt(1, version);
                    ps.setString(2, script);
                    ps.setLong(3, Micros.of(clock.instant()));
                    ps.executeUpdate();
                }
                connection.commit();
                applied.add(version);
            }
        } catch (SQLException e) {
            connection.rollback();
            throw e;
        }
        return applied;
    }

    static int current(Connection connection) throws SQLException {
        try (Statement st = connection.createStatement();
             ResultSet rs = st.executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_version")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static String read(String script) {
        try (InputStream in = Migrations.class.getResourceAsStream(script)) {
            if (in == null) {
                throw new IllegalStateException("migration " + script + " is missing from the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read migration " + script, e);
        }
    }

    /** Splits on semicolons that end a line, after dropping {@code --} comment lines. */
    static List<String> statements(String script) {
        StringBuilder code = new StringBuilder();
        for (String line : script.split("\n")) {
            if (!line.strip().startsWith("--")) {
                code.append(line).append('\n');
            }
        }
        List<String> statements = new ArrayList<>();
        for (String part : code.toString().split(";\\s*\n")) {
            if (!part.isBlank()) {
                statements.add(part.strip().replaceAll(";$", ""));
            }
        }
        return statements;
    }
}
