package org.cocoonjvm.billing.ledger;

import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.channel.ChannelId;
import org.junit.jupiter.api.AfterEach;

/**
 * Several gateways on one ledger database: each recovers only its own reservations, a gateway whose
 * lease expired is swept by the live ones and fenced out, two gateways' concurrent traffic on one
 * account keeps the totals exact, deposits seen by both are credited once, and each gateway keeps
 * its own payment key and channels. Subclasses pick the database.
 *
 * <p>The tests stand in three contracts by theme, each run on H2 and on PostgreSQL:
 * {@link ClusterLeaseContract} (who may start under a gateway id, and how a stop leaves its lease),
 * {@link ClusterRecoveryContract} (what becomes of the reservations a gateway left open, and of a
 * fenced gateway's late writes) and {@link ClusterSharingContract} (gateways live side by side:
 * the lease keeper, concurrent traffic and starts, separate keys and channels). This base holds what
 * they share: the clock, the books opened in a test and closed after it, the database URL, and the
 * helpers used by more than one of them.
 */
abstract class ClusterLedgerFixture {
    static final SecureRandom RANDOM = new SecureRandom();
    static final Duration EXPIRY = Duration.ofSeconds(60);
    static final GatewayId A = new GatewayId("gw-a");
    static final GatewayId B = new GatewayId("gw-b");

    protected abstract TestDatabase database();

    final MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    /** Concurrent: a start that waits for a stopping holder opens its book on a thread of its own. */
    final List<JdbcAccountBook> opened = new CopyOnWriteArrayList<>();
    String url;

    JdbcAccountBook open(GatewayId gateway) {
        if (url == null) {
            url = database().newDatabaseUrl();
        }
        JdbcAccountBook book = JdbcAccountBook.open(url, clock, 4, gateway, EXPIRY);
        opened.add(book);
        return book;
    }

    @AfterEach
    void closeBooks() {
        opened.forEach(JdbcAccountBook::close);
    }

    long feesBilledOn(ChannelId channel) throws Exception {
        try (Connection c = DriverManager.getConnection(url)) {
            return Settlements.workerFeesBilled(c, channel.hex());
        }
    }

    long sumOf(String query) throws Exception {
        try (Connection c = DriverManager.getConnection(url);
             PreparedStatement ps = c.prepareStatement(query);
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
