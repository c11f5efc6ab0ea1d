package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One book's gateway lease, the {@code gateway_leases} row of its {@link GatewayId}: taking it at
 * the next epoch when the book opens (waiting for a stopping holder), renewing it, fencing other
 * gateways' expired leases for a sweep, checking it inside other transactions, and releasing or
 * keeping it at close. It owns the incarnation's epoch (the fencing token every reservation and
 * channel state is stamped with) and the "lease lost" signal, so those have one writer; the rules
 * for when a start may take a held lease are in {@link JdbcAccountBook#open(String,
 * java.time.Clock, int, GatewayId, Duration, boolean)} and the README, "Several gateways".
 */
final class GatewayLease {
    /** How often a start tries again for a lease whose holder is stopping: its release is taken within this. */
    private static final long RELEASE_POLL_MS = 500;
    /** Under the book's name, as before the lease had a class of its own, so log settings keep working. */
    private static final Logger log = LoggerFactory.getLogger(JdbcAccountBook.class);

    private final Clock clock;
    private final Transactions transactions;
    private final GatewayId gateway;
    private final Duration leaseExpiry;
    private final long leaseExpiryMicros;
    /**
     * Whether no other process can have this database open (an embedded H2 file or memory database:
     * H2 locks the file), so a lease holder that is not this process is gone, whatever its host.
     */
    private final boolean exclusive;
    /**
     * This incarnation's lease epoch, taken once in {@link #take}; the fencing token of every
     * reservation it takes. Volatile, as the fields below, so that the ledger's threads see the
     * taken epoch however the book was handed to them, not only through a safe publication.
     */
    private volatile long epoch;
    /** How {@link #take} took the lease, and from whom. */
    private volatile LeaseStart leaseStart;
    /** {@link #keepAtClose}: the close leaves the lease to expire. */
    private volatile boolean keepLease;
    /** {@link #expiresAt()}. */
    private volatile Instant leaseExpiresAt;
    /** Set by the first call that finds this incarnation fenced: from then on it takes nothing more. */
    private final AtomicReference<LeaseLostException> lost = new AtomicReference<>();
    /** Told once, on the thread of the call that found the lease lost ({@link #whenLost}). */
    private volatile Consumer<LeaseLostException> onLost = e -> { };

    GatewayLease(Clock clock, Transactions transactions, GatewayId gateway, Duration leaseExpiry, boolean exclusive) {
        this.clock = clock;
        this.transactions = transactions;
        this.gateway = gateway;
        this.leaseExpiry = leaseExpiry;
        this.leaseExpiryMicros = TimeUnit.MICROSECONDS.convert(leaseExpiry);
        this.exclusive = exclusive;
    }

    GatewayId gateway() {
        return gateway;
    }

    long epoch() {
        return epoch;
    }

    LeaseStart leaseStart() {
        return leaseStart;
    }

    /** See {@link JdbcAccountBook#leaseExpiresAt()}. */
    Instant expiresAt() {
        return leaseExpiresAt;
    }

    /**
     * Takes the lease for this incarnation, once, as the book opens: the rules are {@link
     * JdbcAccountBook#open(String, Clock, int, GatewayId, Duration, boolean, Runnable, String)}'s.
     */
    void take(boolean takeOver, Runnable waiting, String heldDataDir) {
        Instant taking = clock.instant();
        leaseStart = takeOnceReleased(takeOver, waiting, LeaseHolder.current().withDataDir(heldDataDir));
        leaseExpiresAt = taking.plus(leaseExpiry);
        epoch = leaseStart.epoch();
    }

    /**
     * {@link #takeIn Takes the lease}; while its holder is stopping, waits for it to release the
     * lease, trying again every {@value #RELEASE_POLL_MS} ms up to when it said it would have: a
     * restart begun while the previous process drains its streams (as scripts do once its port
     * closes) then starts as soon as that process is done, instead of being refused with advice to
     * wait for the expiry or fence it (audit Q-8). An interrupt ends the wait with the refusal.
     */
    private LeaseStart takeOnceReleased(boolean takeOver, Runnable waiting, LeaseHolder me) {
        boolean told = false;
        while (true) {
            try {
                return transactions.tx("take the lease", c -> takeIn(c, takeOver, me));
            } catch (LeaseHeldException e) {
                // A holder that kept its lease at its stop will not release it: nothing to wait for (review U, U-4).
                Duration left = e.stoppingUntil() == null || e.keptAt() != null ? Duration.ZERO
                        : Duration.between(clock.instant(), e.stoppingUntil());
                if (!left.isPositive()) {
                    throw e;
                }
                if (!told) {
                    log.info("ledger: waiting up to {} s for the stopping gateway {} ({}) to release its lease",
                            LeaseHeldException.seconds(left), gateway, e.holder());
                    told = true;
                    waiting.run();
                }
                try {
                    // Past the bound, not a millisecond before it: the next try then sees a holder that overran.
                    Thread.sleep(Math.min(RELEASE_POLL_MS, left.toMillis() + 1));
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    /**
     * The next epoch, and a fresh expiry, recording this process as the holder: any earlier process
     * with this id is fenced from this commit on. Refused while that process looks alive, unless
     * {@code takeOver} ({@link JdbcAccountBook#open(String, Clock, int, GatewayId, Duration, boolean)}
     * has the rule); refused even with it while that process is stopping (its running requests
     * still settle under the lease): {@link #takeOnceReleased} waits for it, unless it kept its
     * lease at its close (it is gone, and will not release it). The row is read under its lock, so
     * of two starts at once the second sees the first as the holder.
     *
     * @param me this process, as the holder to record, with the data dir it holds
     */
    private LeaseStart takeIn(Connection c, boolean takeOver, LeaseHolder me) throws SQLException {
        long now = Micros.of(clock.instant());
        LeaseStart start;
        try (PreparedStatement ps = c.prepareStatement("SELECT epoch, expires_at_micros, renewed_at_micros, fenced_at_micros, "
                + "released_at_micros, holder_epoch, holder_host, holder_pid, holder_started_at_micros, stopping_until_micros, "
                + "holder_pid_namespace, holder_data_dir, kept_at_micros "
                + "FROM gateway_leases WHERE gateway_id = ? FOR UPDATE")) {
            ps.setString(1, gateway.value());
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    start = null;
                } else {
                    long rowEpoch = rs.getLong(1);
                    long expiresAt = rs.getLong(2);
                    long renewedAt = rs.getLong(3);
                    boolean fenced = rs.getObject(4) != null;
                    boolean released = rs.getObject(5) != null;
                    long holderEpoch = rs.getObject(6) == null ? -1 : rs.getLong(6);
                    // The holder columns describe the row's epoch; a sweep's fence moves it one past them.
                    boolean recorded = rs.getString(7) != null
                            && (holderEpoch == rowEpoch || (fenced && holderEpoch == rowEpoch - 1));
                    LeaseHolder holder = recorded ? new LeaseHolder(rs.getString(7), rs.getLong(8),
                            rs.getObject(9) == null ? null : Micros.toInstant(rs.getLong(9)), rs.getString(11),
                            rs.getString(12)) : null;
                    long previousEpoch = recorded ? holderEpoch : fenced ? rowEpoch - 1 : rowEpoch;
                    Long stoppingUntil = rs.getObject(10) == null ? null : rs.getLong(10);
                    Instant keptAt = rs.getObject(13) == null ? null : Micros.toInstant(rs.getLong(13));
                    LeaseStart.How how;
                    if (released) {
                        how = LeaseStart.How.RELEASED;
                    } else if (fenced) {
                        how = LeaseStart.How.FENCED;
                    } else if (expiresAt <= now) {
                        how = LeaseStart.How.EXPIRED;
                    } else if (holder == null) {
                        how = LeaseStart.How.UNRECORDED;
                    } else if (!holder.isCurrentProcess() && (exclusive || holder.goneFromThisHost()
                            || holder.dataDir() != null && holder.dataDir().equals(me.dataDir()))) {
                        how = LeaseStart.How.HOLDER_GONE;
                    } else if (takeOver && (stoppingUntil == null || stoppingUntil <= now || keptAt != null)) {
                        how = LeaseStart.How.TAKEN_OVER;
                    } else {
                        throw new LeaseHeldException(gateway, holder, Micros.toInstant(renewedAt),
                                Duration.of(expiresAt - now, ChronoUnit.MICROS),
                                Duration.of(now - renewedAt, ChronoUnit.MICROS),
                                stoppingUntil == null ? null : Micros.toInstant(stoppingUntil), keptAt);
                    }
                    start = new LeaseStart(rowEpoch + 1, how, previousEpoch, holder, Micros.toInstant(renewedAt));
                }
            }
        }
        if (start == null) {
            // A racing first start inserts the same key: 23505, run again, and finds the row.
            try (PreparedStatement insert = c.prepareStatement("INSERT INTO gateway_leases (gateway_id, epoch, "
                    + "expires_at_micros, renewed_at_micros, holder_epoch, holder_host, holder_pid, holder_started_at_micros, "
                    + "holder_pid_namespace, holder_data_dir) VALUES (?, 1, ?, ?, 1, ?, ?, ?, ?, ?)")) {
                insert.setString(1, gateway.value());
                insert.setLong(2, now + leaseExpiryMicros);
                insert.setLong(3, now);
                setHolder(insert, 4, me);
                insert.executeUpdate();
            }
            return new LeaseStart(1, LeaseStart.How.FIRST, 0, null, null);
        }
        try (PreparedStatement ps = c.prepareStatement("UPDATE gateway_leases SET epoch = ?, expires_at_micros = ?, "
                + "renewed_at_micros = ?, fenced_at_micros = NULL, released_at_micros = NULL, stopping_until_micros = NULL, "
                + "kept_at_micros = NULL, holder_epoch = ?, holder_host = ?, holder_pid = ?, holder_started_at_micros = ?, "
                + "holder_pid_namespace = ?, holder_data_dir = ? WHERE gateway_id = ?")) {
            ps.setLong(1, start.epoch());
            ps.setLong(2, now + leaseExpiryMicros);
            ps.setLong(3, now);
            ps.setLong(4, start.epoch());
            setHolder(ps, 5, me);
            ps.setString(10, gateway.value());
            ps.executeUpdate();
        }
        return start;
    }

    private static void setHolder(PreparedStatement ps, int from, LeaseHolder holder) throws SQLException {
        ps.setString(from, holder.host());
        ps.setLong(from + 1, holder.pid());
        if (holder.startedAt() == null) {
            ps.setNull(from + 2, java.sql.Types.BIGINT);
        } else {
            ps.setLong(from + 2, Micros.of(holder.startedAt()));
        }
        ps.setString(from + 3, holder.pidNamespace());
        ps.setString(from + 4, holder.dataDir());
    }

    /** See {@link JdbcAccountBook#whenLeaseLost}. */
    void whenLost(Consumer<LeaseLostException> listener) {
        onLost = Objects.requireNonNull(listener, "listener");
        LeaseLostException already = lost.get();
        if (already != null) {
            listener.accept(already);
        }
    }

    /** The lease is found lost: the listener is told, once; returns what to throw. */
    LeaseLostException lost(String what) {
        LeaseLostException e = new LeaseLostException(gateway, epoch, what);
        if (lost.compareAndSet(null, e)) {
            onLost.accept(e);
        }
        return e;
    }

    /** Throws at once if a call already found the lease lost: known, so no round trip to the database. */
    void refuseIfKnownLost(String what) {
        if (lost.get() != null) {
            throw new LeaseLostException(gateway, epoch, what);
        }
    }

    /** Whether this incarnation still holds its gateway's lease, as {@code c} sees it. */
    boolean holds(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT epoch FROM gateway_leases WHERE gateway_id = ?")) {
            ps.setString(1, gateway.value());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() && rs.getLong(1) == epoch;
            }
        }
    }

    /** See {@link JdbcAccountBook#renewLease()}. */
    void renew() {
        Instant renewing = clock.instant();
        transactions.tx("renew the lease", c -> {
            long now = Micros.of(clock.instant());
            try (PreparedStatement ps = c.prepareStatement("UPDATE gateway_leases SET expires_at_micros = ?, "
                    + "renewed_at_micros = ? WHERE gateway_id = ? AND epoch = ?")) {
                ps.setLong(1, now + leaseExpiryMicros);
                ps.setLong(2, now);
                ps.setString(3, gateway.value());
                ps.setLong(4, epoch);
                if (ps.executeUpdate() == 0) {
                    throw lost("its lease row has a newer epoch");
                }
            }
            return null;
        });
        leaseExpiresAt = renewing.plus(leaseExpiryMicros, ChronoUnit.MICROS);
    }

    /**
     * A sweep's first step: fences every other gateway whose lease expired (its epoch moves up, so
     * its renewals, new reservations and journal writes are refused from this commit on).
     */
    void fenceExpired() {
        transactions.tx("fence expired leases", c -> {
            // Once per expiry: a fenced lease stays fenced until its gateway starts again.
            try (PreparedStatement ps = c.prepareStatement("UPDATE gateway_leases SET epoch = epoch + 1, fenced_at_micros = ? "
                    + "WHERE expires_at_micros < ? AND fenced_at_micros IS NULL AND gateway_id <> ?")) {
                long now = Micros.of(clock.instant());
                ps.setLong(1, now);
                ps.setLong(2, now);
                ps.setString(3, gateway.value());
                return ps.executeUpdate();
            }
        });
    }

    /** See {@link JdbcAccountBook#keepLeaseAtClose()}. */
    void keepAtClose() {
        keepLease = true;
    }

    /** See {@link JdbcAccountBook#markStopping(Duration)}. */
    void markStopping(Duration within) {
        long now = Micros.of(clock.instant());
        updateOwnLease("mark the lease stopping", "stopping_until_micros = ?", now + TimeUnit.MICROSECONDS.convert(within));
    }

    /** At the book's close: records that the lease was kept ({@link #keepAtClose}), else releases it. */
    void leave() {
        if (keepLease) {
            long now = Micros.of(clock.instant());
            updateOwnLease("record the lease kept", "kept_at_micros = ?", now);
        } else {
            release();
        }
    }

    /**
     * Marks the lease released, if this incarnation still holds it: the next start with this id
     * takes it at once, wherever it runs, and other gateways' sweeps may end what this one left
     * open (the same as the next start would, unless it had settlements to replay first: then
     * {@link #keepAtClose} keeps this from running). A database that does not answer, or that
     * the last call found down or hanging, leaves the lease to expire, or to the same-host rule.
     */
    private void release() {
        long now = Micros.of(clock.instant());
        updateOwnLease("release the lease", "released_at_micros = ?, expires_at_micros = ?", now, now);
    }

    /** Sets {@code assignments} to {@code values} on this incarnation's lease row, if it still holds it; failures are ignored. */
    private void updateOwnLease(String operation, String assignments, long... values) {
        if (leaseStart == null || transactions.outage().isPresent()) {
            return;   // a database known to be down, or hanging, would hold the stop for its timeouts, for nothing
        }
        try {
            transactions.tx(operation, c -> {
                try (PreparedStatement ps = c.prepareStatement("UPDATE gateway_leases SET " + assignments
                        + " WHERE gateway_id = ? AND epoch = ? AND fenced_at_micros IS NULL")) {
                    int i = 1;
                    for (long value : values) {
                        ps.setLong(i++, value);
                    }
                    ps.setString(i++, gateway.value());
                    ps.setLong(i, epoch);
                    return ps.executeUpdate();
                }
            });
        } catch (RuntimeException e) {
            // Stopping anyway: the lease expires, or the next start on this host finds this process gone.
        }
    }
}
