package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.accounts.CreditConflictException;
import org.cocoonjvm.billing.accounts.DepositComments;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.billing.accounts.UnknownReservationException;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The durable {@link AccountBook}: every operation is one short JDBC transaction on H2 (embedded,
 * a file) or PostgreSQL, with the same schema ({@link Migrations}).
 *
 * <p>How the guarantees hold across threads, processes and restarts: every change to an account's
 * money writes the row that explains it (a credit, a reservation, a settlement) and changes the
 * running totals in the same transaction, so the totals can never disagree with the rows behind
 * them. Totals change only by relative, conditional updates ({@code SET reserved_nanoton =
 * reserved_nanoton + ? WHERE ... AND balance_nanoton - reserved_nanoton >= ?}), never by writing
 * back values read earlier: the check ("is enough available?") and the change it allows are one
 * statement, so no value read by an earlier statement can be written back over a newer one. Each
 * database must still run that statement on the newest committed row, or refuse it: PostgreSQL
 * does at READ COMMITTED, H2 only at SERIALIZABLE ({@link Dialect#isolation()} says why). A
 * reservation ends by one {@code UPDATE ... WHERE state = 'open' AND progress_nanoton = ?} whose
 * update count decides which call ended it; later calls read and return what was stored.
 * Reservation ids come from an identity column, so they stay unique across restarts and are never
 * reused.
 *
 * <p>Several gateways may share one database. A book speaks for one {@link GatewayId}: opening it
 * takes that gateway's lease at the next epoch (fencing out any earlier process with the same id),
 * and each reservation is stamped with the incarnation (id, epoch) that took it. {@link
 * #recoverOpenReservations()} ends only this gateway's reservations; {@link #sweep()} (any live
 * gateway, every few seconds, with {@link #renewLease()}) ends those of incarnations that are not
 * their gateway's current, live one. An owner's late call on a reservation that recovery ended is
 * refused ({@link ReservationRecoveredException}), so nothing it meters after its last recorded
 * progress is billed, or paid. README, "Several gateways", has the reasoning.
 *
 * <p>Calls block on the database: never call them on an event loop. The gateway runs them on a
 * pool of its own threads.
 */
public final class JdbcAccountBook implements AccountBook, AutoCloseable {
    public static final int DEFAULT_POOL_SIZE = 8;
    /**
     * How long a call may go unanswered before the database counts as hung ({@link #stall}): its
     * transactions are a few statements on one row, milliseconds; seconds of silence are not load.
     */
    static final Duration STALL = Duration.ofSeconds(3);
    /**
     * How long a gateway that stopped renewing keeps its reservations before any other gateway may
     * end them: above the longest request (the relay's 10-minute timeout), so that only a gateway
     * silent for longer than any request could run is presumed dead.
     */
    public static final Duration DEFAULT_LEASE_EXPIRY = Duration.ofMinutes(15);
    /**
     * Lost races a transaction runs again before it gives up. Many requests of one key settle on
     * one account row, and H2 at SERIALIZABLE refuses every loser: with 16 threads on one row on a
     * loaded 2-core CI machine, 8 attempts (about 0.25 s of back-off at most) ran out once and a
     * settlement failed. 16 give up to about 1.3 s.
     */
    private static final int ATTEMPTS = 16;
    /** How often a start tries again for a lease whose holder is stopping: its release is taken within this. */
    private static final long RELEASE_POLL_MS = 500;
    private static final Logger log = LoggerFactory.getLogger(JdbcAccountBook.class);

    private final Clock clock;
    private final ConnectionPool pool;
    private final GatewayId gateway;
    private final long leaseExpiryMicros;
    /**
     * Whether no other process can have this database open (an embedded H2 file or memory database:
     * H2 locks the file), so a lease holder that is not this process is gone, whatever its host.
     */
    private final boolean exclusive;
    /** This incarnation's lease epoch, taken once in {@link #open}; the fencing token of every reservation it takes. */
    private long epoch;
    /** How {@link #open} took the lease, and from whom. */
    private LeaseStart leaseStart;
    /** Why the last call could not reach the database; null once one did (see {@link #outage()}). */
    private volatile String outage;
    /** {@link #keepLeaseAtClose}: the close leaves the lease to expire. */
    private volatile boolean keepLease;
    /** {@link #leaseExpiresAt()}. */
    private volatile Instant leaseExpiresAt;
    /** Set by the first call that finds this incarnation fenced: from then on it takes nothing more. */
    private final AtomicReference<LeaseLostException> lost = new AtomicReference<>();
    /** Told once, on the thread of the call that found the lease lost ({@link #whenLeaseLost}). */
    private volatile Consumer<LeaseLostException> onLost = e -> { };
    /** Transactions run again after a lost race, by {@link Dialect#race}. */
    private final Map<String, LongAdder> racesRunAgain = new ConcurrentHashMap<>();

    private JdbcAccountBook(Clock clock, ConnectionPool pool, GatewayId gateway, Duration leaseExpiry, boolean exclusive) {
        this.clock = clock;
        this.exclusive = exclusive;
        this.pool = pool;
        this.gateway = gateway;
        this.leaseExpiryMicros = TimeUnit.MICROSECONDS.convert(leaseExpiry);
    }

    /**
     * {@link #open(String, Clock, int, GatewayId, Duration, boolean) Opens} as {@code gateway},
     * taking its lease over whoever holds it, live or not: what tests of restarts and fencing use.
     */
    public static JdbcAccountBook open(String url, Clock clock, int poolSize, GatewayId gateway, Duration leaseExpiry) {
        return open(url, clock, poolSize, gateway, leaseExpiry, true);
    }

    /**
     * Connects, migrates the schema to {@link Migrations#latest()}, takes {@code gateway}'s lease at
     * its next epoch, and returns the book. It does not {@link #recoverOpenReservations() recover}:
     * the owner does that once it is ready to. From here on the owner must {@link #renewLease()}
     * well within {@code leaseExpiry} ({@link LeaseKeeper} does).
     *
     * <p>The lease is free when no process had it, when its holder released it (a clean {@link
     * #close}), was fenced, or let it expire, when a build before V10 took it (its holder is not
     * recorded), when its holder ran on this host and that process no longer runs (a crash, a
     * kill: the restart need not wait for the expiry), when its holder held the data directory
     * this start now holds (see {@link #open(String, Clock, int, GatewayId, Duration, boolean,
     * Runnable, String)}), and, on an embedded H2 database, whenever
     * its holder is not this process (H2 locks the file). Otherwise another process renewed it
     * within its expiry and may be serving: the start is refused ({@link LeaseHeldException}),
     * unless {@code takeOver}, which fences that process (its running requests end at their last
     * checkpoint, it exits) as any start did before audit N-3. A holder that {@link #markStopping
     * began to stop} is waited for instead, up to when it said it would have released the lease,
     * with or without {@code takeOver}; past that it is refused or taken over as any live one. A
     * holder that {@link #keepLeaseAtClose kept its lease} at its stop is refused at once.
     *
     * <p>An embedded H2 database gets one connection, whatever {@code poolSize} says, so that its
     * transactions run one at a time. With several connections, the first recovery after a SIGKILL
     * failed now and then inside H2 2.3.232 (an index entry whose row was gone; a reservation the
     * account's totals did not hold): H2 writes its file at each commit (WRITE_DELAY=0) with all
     * that every open transaction holds, and its next start ends the transactions it finds left
     * open, several of them in no particular order (put in commit order upstream only after
     * 2.4.240). With one connection, no other transaction is open when a commit writes the file, so
     * a kill leaves none for H2 to end. It costs no throughput: H2 writes commits one at a time
     * anyway (docs/benchmarks.md, "H2 with one connection"; ton-billing README, "Crash safety").
     *
     * @param url         a {@code jdbc:h2:...} or {@code jdbc:postgresql:...} URL, credentials included
     * @param poolSize    connections to a database server (PostgreSQL, H2 over TCP); an embedded H2 database gets one
     * @param leaseExpiry how long after its last renewal this gateway may be presumed dead by the others
     * @param takeOver    take the lease from a holder that looks alive
     * @throws LedgerUnavailableException if the database cannot be reached or migrated
     * @throws LeaseHeldException         if another process holds the lease and looks alive, and not {@code takeOver}
     */
    public static JdbcAccountBook open(String url, Clock clock, int poolSize, GatewayId gateway, Duration leaseExpiry,
                                       boolean takeOver) {
        return open(url, clock, poolSize, gateway, leaseExpiry, takeOver, () -> { }, null);
    }

    /**
     * As {@link #open(String, Clock, int, GatewayId, Duration, boolean)}, running {@code waiting}
     * once if the start waits for a stopping holder, before the wait: the launcher lets go of the
     * ports it holds meanwhile, which would otherwise take connections it cannot answer.
     *
     * @param heldDataDir the id of a directory this process holds an exclusive OS lock on for as
     *                    long as it runs, as every holder recorded with that id did: such a holder
     *                    is gone, whatever its host or PID namespace (review U, U-2), and the lease
     *                    is taken at once; null: none (the demo), judged by host and process only
     */
    public static JdbcAccountBook open(String url, Clock clock, int poolSize, GatewayId gateway, Duration leaseExpiry,
                                       boolean takeOver, Runnable waiting, String heldDataDir) {
        Dialect dialect = Dialect.of(url);
        Objects.requireNonNull(clock, "clock");
        Objects.requireNonNull(gateway, "gateway");
        if (leaseExpiry.isNegative() || leaseExpiry.isZero()) {
            throw new IllegalArgumentException("a lease expiry must be positive, got " + leaseExpiry);
        }
        boolean exclusive = dialect == Dialect.H2 && embedded(url);
        ConnectionPool pool;
        try {
            pool = new ConnectionPool(dialect.connectUrl(url), dialect.isolation(), exclusive ? 1 : poolSize);
        } catch (SQLException e) {
            throw new LedgerUnavailableException("connect to " + redacted(url), e);
        }
        JdbcAccountBook book = new JdbcAccountBook(clock, pool, gateway, leaseExpiry, exclusive);
        try {
            book.tx("migrate", c -> Migrations.apply(c, clock));
            Instant taking = clock.instant();
            book.leaseStart = book.takeLeaseOnceReleased(takeOver, waiting, LeaseHolder.current().withDataDir(heldDataDir));
            book.leaseExpiresAt = taking.plus(leaseExpiry);
            book.epoch = book.leaseStart.epoch();
        } catch (RuntimeException e) {
            pool.close();
            throw e;
        }
        return book;
    }

    /** As the {@link GatewayId#DEFAULT default} gateway, with the default lease expiry. */
    public static JdbcAccountBook open(String url, Clock clock, int poolSize) {
        return open(url, clock, poolSize, GatewayId.DEFAULT, DEFAULT_LEASE_EXPIRY);
    }

    public static JdbcAccountBook open(String url, Clock clock) {
        return open(url, clock, DEFAULT_POOL_SIZE);
    }

    /** The gateway this book speaks for. */
    public GatewayId gateway() {
        return gateway;
    }

    /** This incarnation's lease epoch: one more than the previous process with the same gateway id had. */
    public long epoch() {
        return epoch;
    }

    /** How this incarnation took its lease, and whose it was. */
    public LeaseStart leaseStart() {
        return leaseStart;
    }

    /** An H2 database that only this process can have open: not a server's ({@code tcp:}, {@code ssl:}, {@code AUTO_SERVER}). */
    private static boolean embedded(String url) {
        String upper = url.toUpperCase(java.util.Locale.ROOT);
        return !upper.startsWith("JDBC:H2:TCP:") && !upper.startsWith("JDBC:H2:SSL:") && !upper.contains(";AUTO_SERVER=TRUE");
    }

    /**
     * {@link #takeLease Takes the lease}; while its holder is stopping, waits for it to release the
     * lease, trying again every {@value #RELEASE_POLL_MS} ms up to when it said it would have: a
     * restart begun while the previous process drains its streams (as scripts do once its port
     * closes) then starts as soon as that process is done, instead of being refused with advice to
     * wait for the expiry or fence it (audit Q-8). An interrupt ends the wait with the refusal.
     */
    private LeaseStart takeLeaseOnceReleased(boolean takeOver, Runnable waiting, LeaseHolder me) {
        boolean told = false;
        while (true) {
            try {
                return tx("take the lease", c -> takeLease(c, takeOver, me));
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
     * {@code takeOver} ({@link #open(String, Clock, int, GatewayId, Duration, boolean)} has the rule);
     * refused even with it while that process is stopping (its running requests still settle under
     * the lease): {@link #takeLeaseOnceReleased} waits for it, unless it kept its lease at its close
     * (it is gone, and will not release it). The row is read under its lock, so of two starts at
     * once the second sees the first as the holder.
     *
     * @param me this process, as the holder to record, with the data dir it holds
     */
    private LeaseStart takeLease(Connection c, boolean takeOver, LeaseHolder me) throws SQLException {
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

    /**
     * Runs {@code listener} once, on the thread of whichever call first finds this incarnation
     * fenced: a reservation, a channel state, a renewal. A fenced gateway must stop serving at the
     * first sign, not at its next lease beat: what it relays meanwhile is billed to nobody.
     */
    public void whenLeaseLost(Consumer<LeaseLostException> listener) {
        onLost = Objects.requireNonNull(listener, "listener");
        LeaseLostException already = lost.get();
        if (already != null) {
            listener.accept(already);
        }
    }

    /** The lease is found lost: the listener is told, once; returns what to throw. */
    LeaseLostException leaseLost(String what) {
        LeaseLostException e = new LeaseLostException(gateway, epoch, what);
        if (lost.compareAndSet(null, e)) {
            onLost.accept(e);
        }
        return e;
    }

    /** Whether this incarnation still holds its gateway's lease, as {@code c} sees it. */
    boolean holdsLease(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT epoch FROM gateway_leases WHERE gateway_id = ?")) {
            ps.setString(1, gateway.value());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() && rs.getLong(1) == epoch;
            }
        }
    }

    /**
     * Pushes this gateway's lease expiry to now + the expiry. Renewing a lease that expired is fine
     * as long as nobody fenced it: a sweep bumps the epoch before it ends anything.
     *
     * @throws LeaseLostException if this incarnation was fenced (by a sweep, or a newer process with this id)
     */
    public void renewLease() {
        Instant renewing = clock.instant();
        tx("renew the lease", c -> {
            long now = Micros.of(clock.instant());
            try (PreparedStatement ps = c.prepareStatement("UPDATE gateway_leases SET expires_at_micros = ?, "
                    + "renewed_at_micros = ? WHERE gateway_id = ? AND epoch = ?")) {
                ps.setLong(1, now + leaseExpiryMicros);
                ps.setLong(2, now);
                ps.setString(3, gateway.value());
                ps.setLong(4, epoch);
                if (ps.executeUpdate() == 0) {
                    throw leaseLost("its lease row has a newer epoch");
                }
            }
            return null;
        });
        leaseExpiresAt = renewing.plus(leaseExpiryMicros, ChronoUnit.MICROS);
    }

    /**
     * When this incarnation's lease expires as far as it knows: its last renewal that committed
     * (or its start) plus the expiry, read before the write, so never later than the row says.
     * From then on any peer's sweep may fence it and end its reservations.
     */
    public Instant leaseExpiresAt() {
        return leaseExpiresAt;
    }

    /**
     * Fences every other gateway whose lease expired (its epoch moves up, so its renewals, new
     * reservations and journal writes are refused from this commit on), then ends every open
     * reservation not held by its gateway's current incarnation, at its last recorded progress:
     * the rule {@link #recoverOpenReservations()} applies at a start. Safe on any number of gateways
     * at once: each reservation ends once, whoever gets there first.
     *
     * @return what this call ended, in reservation order
     */
    public List<RecoveredReservation> sweep() {
        tx("fence expired leases", c -> {
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
        // A reservation of a gateway without a lease row was taken before V6 by a gateway that never started since.
        return recover("find reservations of fenced incarnations", "SELECT r.account_id, r.reservation_id, r.amount_nanoton "
                + "FROM reservations r LEFT JOIN gateway_leases l ON l.gateway_id = r.gateway_id "
                + "WHERE r.state = 'open' AND (l.epoch IS NULL OR r.lease_epoch < l.epoch) ORDER BY r.reservation_id", null);
    }

    @Override
    public Account open(String accountId) {
        AccountState.checkId(accountId);
        // A unique violation (another opener won, or the random comment collided) rolls back and
        // runs this again: the first case then finds the account, the second draws a new comment.
        return tx("open", c -> {
            Optional<Account> existing = findAccount(c, "account_id", accountId);
            if (existing.isPresent()) {
                return existing.get();
            }
            Account account = new Account(accountId, DepositComments.random(),
                    Micros.toInstant(Micros.of(clock.instant())));
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO accounts (account_id, deposit_comment, "
                    + "opened_at_micros, balance_nanoton, reserved_nanoton, spent_nanoton) VALUES (?, ?, ?, 0, 0, 0)")) {
                ps.setString(1, accountId);
                ps.setString(2, account.depositComment());
                ps.setLong(3, Micros.of(account.openedAt()));
                ps.executeUpdate();
            }
            return account;
        });
    }

    @Override
    public AccountState balance(String accountId) {
        AccountState.checkId(accountId);
        return tx("balance", c -> state(c, accountId, false));
    }

    @Override
    public Account account(String accountId) {
        AccountState.checkId(accountId);
        return tx("account", c -> findAccount(c, "account_id", accountId)
                .orElseThrow(() -> new UnknownAccountException(accountId)));
    }

    @Override
    public Optional<Account> accountByDepositComment(String depositComment) {
        if (!DepositComments.wellFormed(depositComment)) {
            return Optional.empty();
        }
        return tx("account by deposit comment", c -> findAccount(c, "deposit_comment", depositComment));
    }

    @Override
    public boolean credit(String accountId, long amountNanoton, String reference) {
        AccountState.checkId(accountId);
        if (amountNanoton <= 0) {
            throw new IllegalArgumentException("a credit must be > 0 nanoTON, got " + amountNanoton);
        }
        if (reference == null || reference.isBlank()) {
            throw new IllegalArgumentException("a credit needs a reference");
        }
        return tx("credit", c -> {
            AccountState s = state(c, accountId, true);
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT account_id, amount_nanoton FROM credits WHERE reference = ?")) {
                ps.setString(1, reference);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        String firstAccount = rs.getString(1);
                        long firstAmount = rs.getLong(2);
                        if (!firstAccount.equals(accountId) || firstAmount != amountNanoton) {
                            throw new CreditConflictException(reference, firstAccount, firstAmount, accountId, amountNanoton);
                        }
                        return false;
                    }
                }
            }
            return insertCredit(c, s, amountNanoton, reference);
        });
    }

    @Override
    public boolean creditOnce(String accountId, long amountNanoton, String reference) {
        AccountState.checkId(accountId);
        if (amountNanoton <= 0) {
            throw new IllegalArgumentException("a credit must be > 0 nanoTON, got " + amountNanoton);
        }
        if (reference == null || reference.isBlank()) {
            throw new IllegalArgumentException("a credit needs a reference");
        }
        return tx("credit once", c -> {
            // The account's row lock makes two calls for one account take turns: the second finds
            // the first's credit (and a racing insert of the same reference is a 23505, run again).
            AccountState s = state(c, accountId, true);
            try (PreparedStatement ps = c.prepareStatement("SELECT reference, account_id, amount_nanoton FROM credits "
                    + "WHERE account_id = ? AND (reference = ? OR reference LIKE ? ESCAPE '!') "
                    + "UNION ALL SELECT reference, account_id, amount_nanoton FROM credits WHERE reference = ?")) {
                ps.setString(1, accountId);
                ps.setString(2, reference);
                ps.setString(3, reference.replaceAll("([!%_])", "!$1") + ":%");
                ps.setString(4, reference);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        if (!rs.getString(2).equals(accountId)) {
                            throw new CreditConflictException(rs.getString(1), rs.getString(2), rs.getLong(3),
                                    accountId, amountNanoton);
                        }
                        return false;
                    }
                }
            }
            return insertCredit(c, s, amountNanoton, reference);
        });
    }

    /** Writes a credit the caller found new, and adds it to the balance. */
    private boolean insertCredit(Connection c, AccountState s, long amountNanoton, String reference) throws SQLException {
        Math.addExact(s.balanceNanoton(), amountNanoton);   // throws before anything is written
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO credits (reference, account_id, amount_nanoton, "
                + "credited_at_micros) VALUES (?, ?, ?, ?)")) {
            ps.setString(1, reference);
            ps.setString(2, s.accountId());
            ps.setLong(3, amountNanoton);
            ps.setLong(4, Micros.of(clock.instant()));
            ps.executeUpdate();
        }
        addToTotals(c, s.accountId(), amountNanoton, 0, 0);
        return true;
    }

    @Override
    public Reservation reserve(String accountId, long amountNanoton, ReservationLabel label) {
        AccountState.checkId(accountId);
        if (amountNanoton < 0) {
            throw new IllegalArgumentException("a reservation must be >= 0 nanoTON, got " + amountNanoton);
        }
        if (lost.get() != null) {
            throw new LeaseLostException(gateway, epoch, "refused to reserve");  // known: no round trip to the database
        }
        return tx("reserve", c -> {
            // Taken only while this incarnation holds the lease (a fenced one's hold would be swept
            // anyway); checked before the account row is locked, so the check adds nothing to how long that lock is held.
            if (!holdsLease(c)) {
                throw leaseLost("refused to reserve");
            }
            // The check and the hold in one statement, on the newest committed row (see the class comment).
            try (PreparedStatement ps = c.prepareStatement("UPDATE accounts SET reserved_nanoton = reserved_nanoton + ? "
                    + "WHERE account_id = ? AND balance_nanoton - reserved_nanoton >= ?")) {
                ps.setLong(1, amountNanoton);
                ps.setString(2, accountId);
                ps.setLong(3, amountNanoton);
                if (ps.executeUpdate() == 0) {
                    AccountState s = state(c, accountId, false);   // or UnknownAccountException
                    throw new InsufficientBalanceException(accountId, amountNanoton, s.availableNanoton());
                }
            }
            long id;
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO reservations (account_id, amount_nanoton, "
                    + "progress_nanoton, state, reserved_at_micros, gateway_id, lease_epoch, request_id, key_id, model) "
                    + "VALUES (?, ?, 0, 'open', ?, ?, ?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, accountId);
                ps.setLong(2, amountNanoton);
                ps.setLong(3, Micros.of(clock.instant()));
                ps.setString(4, gateway.value());
                ps.setLong(5, epoch);
                // Cut to their columns: a client's model name too long for the audit must not refuse its hold.
                ps.setString(6, label == null ? null : cut(label.requestId(), 100));
                ps.setString(7, label == null ? null : cut(label.keyId(), 200));
                ps.setString(8, label == null ? null : cut(label.model(), 1000));
                ps.executeUpdate();
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    keys.next();
                    id = keys.getLong(1);   // the identity column comes first in both drivers' answers
                }
            }
            return new Reservation(accountId, id, amountNanoton);
        });
    }

    @Override
    public Settlement settle(Reservation reservation, long actualCostNanoton) {
        checkCost(actualCostNanoton);
        return end("settle", reservation, progress -> Settlement.charge(reservation, Math.max(actualCostNanoton, progress)),
                null);
    }

    @Override
    public Settlement settle(Reservation reservation, RequestRecord request) {
        Objects.requireNonNull(request, "request");
        long cost = request.clientCostNanoton();
        return end("settle", reservation, progress -> Settlement.charge(reservation, Math.max(cost, progress)), request);
    }

    @Override
    public Settlement release(Reservation reservation) {
        return end("release", reservation, atProgress(reservation), null);
    }

    /**
     * Two primary-key lookups, whatever the ledger's size: the record by its request id, then its
     * reservation, whose charge is what the account paid (the record's client cost, or the
     * progress where that was higher). The account is a condition of the same statement, so
     * another account's request reads exactly as an unknown one.
     */
    @Override
    public Optional<BilledRequest> request(String accountId, String requestId) {
        AccountState.checkId(accountId);
        if (requestId == null) {
            return Optional.empty();
        }
        return tx("read request", c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT q.model, q.prompt_tokens, q.cached_tokens, "
                    + "q.completion_tokens, q.reasoning_tokens, r.charged_nanoton, q.recorded_at_micros FROM requests q "
                    + "JOIN reservations r ON r.reservation_id = q.reservation_id WHERE q.request_id = ? AND q.account_id = ?")) {
                ps.setString(1, requestId);
                ps.setString(2, accountId);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? Optional.of(new BilledRequest(requestId, accountId, rs.getString(1),
                            new TokenCounts(rs.getLong(2), rs.getLong(3), rs.getLong(4), rs.getLong(5)), rs.getLong(6),
                            Micros.toInstant(rs.getLong(7)))) : Optional.empty();
                }
            }
        });
    }

    /** A release after recorded progress is a settlement at that progress: that usage happened. */
    private static Outcome atProgress(Reservation reservation) {
        return progress -> progress == 0 ? Settlement.release(reservation) : Settlement.charge(reservation, progress);
    }

    @Override
    public boolean recordProgress(Reservation reservation, long costSoFarNanoton) {
        checkProgress(costSoFarNanoton);
        return tx("record progress", c -> {
            try (PreparedStatement ps = c.prepareStatement(PROGRESS_UPDATE)) {
                bindProgress(ps, reservation, costSoFarNanoton);
                if (ps.executeUpdate() == 1) {
                    return true;
                }
            }
            // Nothing changed: say why (unknown, ended, or already at least this far).
            Stored stored = stored(c, reservation, false);
            refuseIfRecovered(stored);
            return "open".equals(stored.state());
        });
    }

    /**
     * All of {@code progress} in one transaction: the payment round's checkpoint, whatever the
     * number of requests it covers. Their accounts are locked first, in account order, and rows
     * are updated in reservation order, so nothing waits on another's locks in the opposite order.
     */
    @Override
    public void recordProgress(Map<Reservation, Long> progress) {
        recordProgress(progress, Map.of());
    }

    /**
     * With each share written on its reservation row (V5) in the same transaction as the progress:
     * a crash leaves both or neither, so the fees a restarted payer owes match what is billed.
     * The latest share wins, since a retried request's later attempt (on another worker, maybe) is
     * the one its settlement bills. The fee is written only while the reservation is open (after,
     * its audit record holds the final one), and the channel too unless the settlement named one.
     * A reservation that recovery ended fails the whole batch ({@link ReservationRecoveredException}):
     * the payment round that asked must not pay for usage nobody bills.
     */
    @Override
    public void recordProgress(Map<Reservation, Long> progress, Map<Reservation, WorkerShare> shares) {
        progress.values().forEach(JdbcAccountBook::checkProgress);
        if (progress.isEmpty()) {
            return;
        }
        if (!progress.keySet().containsAll(shares.keySet())) {
            throw new IllegalArgumentException("a worker share for a reservation without progress");
        }
        List<Map.Entry<Reservation, Long>> ordered = new ArrayList<>(progress.entrySet());
        ordered.sort(Comparator.comparingLong(e -> e.getKey().id()));
        tx("record progress (batch)", c -> {
            // The accounts first, as every money change does, in one order. On PostgreSQL, the
            // shares' second update of a row this transaction already updated checks the
            // reservation's foreign key again, a KEY SHARE lock on its account: taken after the
            // reservations, while a settlement holds the account and waits for one of them, it
            // deadlocks under ordinary load, one second of stall each (audit L, 1).
            for (String account : new TreeSet<>(ordered.stream().map(e -> e.getKey().accountId()).toList())) {
                try {
                    state(c, account, true);
                } catch (UnknownAccountException unknown) {
                    // its reservations are skipped below
                }
            }
            List<Reservation> unchanged = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(PROGRESS_UPDATE)) {
                for (Map.Entry<Reservation, Long> e : ordered) {
                    bindProgress(ps, e.getKey(), e.getValue());
                    ps.addBatch();
                }
                int[] updated = ps.executeBatch();
                for (int i = 0; i < updated.length; i++) {
                    if (updated[i] == 0) {
                        unchanged.add(ordered.get(i).getKey());
                    }
                }
            }
            // Ended, unknown or already this far: skipped, unless recovery ended it.
            for (Reservation reservation : unchanged) {
                try {
                    refuseIfRecovered(stored(c, reservation, false));
                } catch (UnknownReservationException skipped) {
                    // skipped, as documented: nothing of this book's to bill
                }
            }
            if (!shares.isEmpty()) {
                // The worker and its tokens with its fee (V14): what a recovery reports and records.
                try (PreparedStatement ps = c.prepareStatement("UPDATE reservations SET "
                        + "channel_id = CASE WHEN state = 'open' OR channel_id IS NULL THEN ? ELSE channel_id END, "
                        + "worker_fee_nanoton = CASE WHEN state = 'open' THEN ? ELSE worker_fee_nanoton END, "
                        + "worker_id = CASE WHEN state = 'open' THEN ? ELSE worker_id END, "
                        + "prompt_tokens = CASE WHEN state = 'open' THEN ? ELSE prompt_tokens END, "
                        + "cached_tokens = CASE WHEN state = 'open' THEN ? ELSE cached_tokens END, "
                        + "completion_tokens = CASE WHEN state = 'open' THEN ? ELSE completion_tokens END, "
                        + "reasoning_tokens = CASE WHEN state = 'open' THEN ? ELSE reasoning_tokens END "
                        + "WHERE reservation_id = ? AND gateway_id = ?")) {
                    for (Map.Entry<Reservation, Long> e : ordered) {
                        WorkerShare share = shares.get(e.getKey());
                        if (share != null) {
                            ps.setString(1, share.channelId());
                            ps.setLong(2, share.feeNanoton());
                            ps.setString(3, share.workerId() == null ? null : cut(share.workerId(), 1000));
                            TokenCounts tokens = share.tokens();
                            long[] counts = tokens == null ? null
                                    : new long[] {tokens.prompt(), tokens.cached(), tokens.completion(), tokens.reasoning()};
                            for (int t = 0; t < 4; t++) {
                                if (counts == null) {
                                    ps.setNull(4 + t, java.sql.Types.BIGINT);
                                } else {
                                    ps.setLong(4 + t, counts[t]);
                                }
                            }
                            ps.setLong(8, e.getKey().id());
                            ps.setString(9, gateway.value());
                            ps.addBatch();
                        }
                    }
                    ps.executeBatch();
                }
            }
            return null;
        });
    }

    /**
     * The worker fees this book bills on payment channel {@code channelId}: each request's audited
     * fee once settled, else the fee its last checkpoint recorded (what a recovered reservation is
     * charged for). Every request counts once, whatever the rounds and crashes before.
     */
    static long workerFeesBilled(Connection c, String channelId) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT COALESCE(SUM(COALESCE(q.worker_fee_nanoton, "
                + "r.worker_fee_nanoton)), 0) FROM reservations r LEFT JOIN requests q "
                + "ON q.reservation_id = r.reservation_id WHERE r.channel_id = ?")) {
            ps.setString(1, channelId);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /**
     * Ends every open reservation of this book's gateway (the reservations of other gateways are
     * theirs, or {@link #sweep()}'s once their lease expires), each at its last recorded progress.
     */
    @Override
    public List<RecoveredReservation> recoverOpenReservations() {
        return recover("find open reservations", "SELECT account_id, reservation_id, amount_nanoton FROM reservations "
                + "WHERE state = 'open' AND gateway_id = ? ORDER BY reservation_id", gateway.value());
    }

    /** Ends what {@code query} finds (with {@code gatewayParameter} bound, if not null) as recovered by this gateway. */
    private List<RecoveredReservation> recover(String operation, String query, String gatewayParameter) {
        List<Reservation> open = tx(operation, c -> {
            List<Reservation> found = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(query)) {
                if (gatewayParameter != null) {
                    ps.setString(1, gatewayParameter);
                }
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        found.add(new Reservation(rs.getString(1), rs.getLong(2), rs.getLong(3)));
                    }
                }
            }
            return found;
        });
        List<RecoveredReservation> ended = new ArrayList<>(open.size());
        for (Reservation reservation : open) {
            recoverOne(reservation).ifPresent(ended::add);
        }
        return ended;
    }

    /**
     * Ends one reservation at its last progress as recovered by this gateway, and keeps the record
     * of the request it billed, in one transaction: a second recovery (another start, a peer's
     * sweep at the same time) finds it ended and reports nothing, so each is reported, and
     * recorded, once. Empty if it ended meanwhile: its owner settled it, or another recovery took it.
     */
    private Optional<RecoveredReservation> recoverOne(Reservation reservation) {
        return tx("recover", c -> {
            lockAccount(c, reservation);
            Stored stored = storedAnyGateway(c, reservation, true);
            if (stored.outcome() != null) {
                return Optional.empty();
            }
            Settlement settlement = endOpen(c, reservation, stored, atProgress(reservation), null, gateway);
            try (PreparedStatement ps = c.prepareStatement("SELECT request_id, key_id, model, worker_id, prompt_tokens, "
                    + "cached_tokens, completion_tokens, reasoning_tokens, worker_fee_nanoton FROM reservations "
                    + "WHERE reservation_id = ?")) {
                ps.setLong(1, reservation.id());
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    // Null before V14, and the tokens until a checkpoint wrote them.
                    ReservationLabel label = rs.getString(1) == null ? null
                            : new ReservationLabel(rs.getString(1), rs.getString(2), rs.getString(3));
                    TokenCounts tokens = rs.getObject(5) == null ? null
                            : new TokenCounts(rs.getLong(5), rs.getLong(6), rs.getLong(7), rs.getLong(8));
                    if (label != null && tokens != null && settlement.chargedNanoton() > 0) {
                        // What its client can look up (GET /v1/requests/{id}) and the operator audits, as
                        // for any settled request: the usage and worker fee of the checkpoint it is charged.
                        insertRequest(c, reservation, new RequestRecord(label.requestId(), rs.getString(4), null,
                                label.model(), tokens, settlement.chargedNanoton(), rs.getLong(9)));
                    }
                    return Optional.of(new RecoveredReservation(settlement, label, rs.getString(4), tokens));
                }
            }
        });
    }

    /**
     * One statement: it takes the row lock, so it is ordered with a concurrent end() (which reads
     * the row FOR UPDATE), and rechecks 'open' after any wait. Progress only rises.
     */
    private static final String PROGRESS_UPDATE = "UPDATE reservations SET progress_nanoton = ? "
            + "WHERE reservation_id = ? AND account_id = ? AND amount_nanoton = ? AND gateway_id = ? AND state = 'open' "
            + "AND progress_nanoton < ?";

    private void bindProgress(PreparedStatement ps, Reservation reservation, long costSoFarNanoton)
            throws SQLException {
        ps.setLong(1, costSoFarNanoton);
        ps.setLong(2, reservation.id());
        ps.setString(3, reservation.accountId());
        ps.setLong(4, reservation.amountNanoton());
        ps.setString(5, gateway.value());
        ps.setLong(6, costSoFarNanoton);
    }

    /** An owner's call on a reservation that recovery ended: refused, see {@link ReservationRecoveredException}. */
    private static void refuseIfRecovered(Stored stored) {
        if (stored.recoveredBy() != null) {
            throw new ReservationRecoveredException(stored.outcome(), "gateway " + stored.recoveredBy());
        }
    }

    private static void checkProgress(long costSoFarNanoton) {
        if (costSoFarNanoton < 0) {
            throw new IllegalArgumentException("progress must be >= 0 nanoTON, got " + costSoFarNanoton);
        }
    }

    /**
     * The payer's channel journal in this ledger's database: the states it signs and the key that
     * signs them live beside the money they pay out, in one backup.
     */
    public JdbcChannelJournal channelJournal() {
        return new JdbcChannelJournal(this, clock);
    }

    /** The audit trail of one account's requests, oldest first. */
    public List<RequestRecord> requests(String accountId) {
        AccountState.checkId(accountId);
        return tx("read requests", c -> {
            List<RequestRecord> records = new ArrayList<>();
            // The channel lives on the reservation row (V5), which the settlement sets from this record.
            try (PreparedStatement ps = c.prepareStatement("SELECT q.request_id, q.worker_id, r.channel_id, q.model, "
                    + "q.prompt_tokens, q.cached_tokens, q.completion_tokens, q.reasoning_tokens, q.client_cost_nanoton, "
                    + "q.worker_fee_nanoton FROM requests q JOIN reservations r ON r.reservation_id = q.reservation_id "
                    + "WHERE q.account_id = ? ORDER BY q.reservation_id")) {
                ps.setString(1, accountId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        records.add(new RequestRecord(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4),
                                new TokenCounts(rs.getLong(5), rs.getLong(6), rs.getLong(7), rs.getLong(8)),
                                rs.getLong(9), rs.getLong(10)));
                    }
                }
            }
            return records;
        });
    }

    @Override
    public void close() {
        if (keepLease) {
            long now = Micros.of(clock.instant());
            updateOwnLease("record the lease kept", "kept_at_micros = ?", now);
        } else {
            releaseLease();
        }
        pool.close();
    }

    /**
     * Leaves the lease to expire at {@link #close} instead of releasing it. For a gateway that
     * stops with settlements still to bill (kept in its journal for its next start): they are open
     * reservations here, which a peer's sweep would end at their last checkpoints as soon as the
     * lease is released, before the next start could bill them as their clients were told (review
     * R, R-1). The close records that it kept it (best effort, as the release), so that a start
     * meanwhile is refused at once, saying why, rather than waiting for a release that will not
     * come (review U, U-4). The next start with the same data dir, or on this host in the same PID
     * namespace, takes the lease at once all the same, this process gone.
     */
    public void keepLeaseAtClose() {
        keepLease = true;
    }

    /**
     * Records that this incarnation has begun to stop and will have released its lease within
     * {@code within} (its drain, its grace and its close): a start with this gateway id meanwhile
     * waits for the release instead of being refused, and never takes the lease before then, as
     * this incarnation's running requests still settle under it (audit Q-8). The lease is renewed
     * as before until {@link #close}. Best effort, as the release: a start meanwhile is then
     * refused, as before.
     */
    public void markStopping(Duration within) {
        long now = Micros.of(clock.instant());
        updateOwnLease("mark the lease stopping", "stopping_until_micros = ?", now + TimeUnit.MICROSECONDS.convert(within));
    }

    /**
     * Marks the lease released, if this incarnation still holds it: the next start with this id
     * takes it at once, wherever it runs, and other gateways' sweeps may end what this one left
     * open (the same as the next start would, unless it had settlements to replay first: then
     * {@link #keepLeaseAtClose} keeps this from running). A database that does not answer, or that
     * the last call found down or hanging, leaves the lease to expire, or to the same-host rule.
     */
    private void releaseLease() {
        long now = Micros.of(clock.instant());
        updateOwnLease("release the lease", "released_at_micros = ?, expires_at_micros = ?", now, now);
    }

    /** Sets {@code assignments} to {@code values} on this incarnation's lease row, if it still holds it; failures are ignored. */
    private void updateOwnLease(String operation, String assignments, long... values) {
        if (leaseStart == null || outage().isPresent()) {
            return;   // a database known to be down, or hanging, would hold the stop for its timeouts, for nothing
        }
        try {
            tx(operation, c -> {
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

    /** What a reservation row holds; {@code recoveredBy} is null unless recovery ended it. */
    private record Stored(String state, long progressNanoton, Settlement outcome, String recoveredBy) {
    }

    @FunctionalInterface
    private interface Outcome {
        Settlement at(long progressNanoton);
    }

    /**
     * The owner's settle or release: refused if recovery ended the reservation, the first outcome
     * if it already ended otherwise.
     *
     * @param request the audit record to keep with a settlement; null for none
     */
    private Settlement end(String operation, Reservation reservation, Outcome outcome, RequestRecord request) {
        Objects.requireNonNull(reservation, "reservation");
        return tx(operation, c -> {
            lockAccount(c, reservation);
            Stored stored = stored(c, reservation, true);
            if (stored.outcome() != null) {
                refuseIfRecovered(stored);
                return stored.outcome();
            }
            return endOpen(c, reservation, stored, outcome, request, null);
        });
    }

    /** The account row first, as every money change does: one lock order, no deadlocks. */
    private static void lockAccount(Connection c, Reservation reservation) throws SQLException {
        try {
            state(c, reservation.accountId(), true);
        } catch (UnknownAccountException e) {
            throw new UnknownReservationException(reservation, "never issued by this book");
        }
    }

    /**
     * Ends a reservation {@code stored} found open (its row locked), with the outcome at its progress.
     *
     * @param request     the audit record to keep with a settlement; null for none
     * @param recoveredBy this gateway, when it ends the reservation as recovery (at start, or a
     *                    sweep); null for the owner's own settle or release
     */
    private Settlement endOpen(Connection c, Reservation reservation, Stored stored, Outcome outcome, RequestRecord request,
                               GatewayId recoveredBy) throws SQLException {
        Settlement settlement = outcome.at(stored.progressNanoton());
        // Ends it only if it is still open at the progress the outcome was computed from. The
        // settlement's channel, if it names one, is where its audited worker fee is owed.
        String channel = request == null ? null : request.channelId();
        try (PreparedStatement ps = c.prepareStatement("UPDATE reservations SET state = ?, charged_nanoton = ?, "
                + "released_nanoton = ?, overrun_nanoton = ?, ended_at_micros = ?, "
                + (channel == null ? "" : "channel_id = ?, ") + "recovered_by = ? "
                + "WHERE reservation_id = ? AND state = 'open' AND progress_nanoton = ?")) {
            int i = 1;
            // Told apart by the outcome alone: a settlement at cost 0 is a release, to the nanoTON.
            ps.setString(i++, settlement.chargedNanoton() == 0 ? "released" : "settled");
            ps.setLong(i++, settlement.chargedNanoton());
            ps.setLong(i++, settlement.releasedNanoton());
            ps.setLong(i++, settlement.overrunNanoton());
            ps.setLong(i++, Micros.of(clock.instant()));
            if (channel != null) {
                ps.setString(i++, channel);
            }
            ps.setString(i++, recoveredBy == null ? null : recoveredBy.value());
            ps.setLong(i++, reservation.id());
            ps.setLong(i, stored.progressNanoton());
            if (ps.executeUpdate() == 0) {
                // Another call ended it or progress moved after our read: a lost race, run again.
                throw new SQLException("reservation " + reservation.id() + " changed while ending it", "40001");
            }
        }
        addToTotals(c, reservation.accountId(), Math.negateExact(settlement.chargedNanoton()),
                Math.negateExact(reservation.amountNanoton()), settlement.chargedNanoton());
        if (request != null) {
            insertRequest(c, reservation, request);
        }
        return settlement;
    }

    private void insertRequest(Connection c, Reservation reservation, RequestRecord r) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO requests (request_id, reservation_id, account_id, "
                + "worker_id, model, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, "
                + "client_cost_nanoton, worker_fee_nanoton, recorded_at_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
            ps.setString(1, r.requestId());
            ps.setLong(2, reservation.id());
            ps.setString(3, reservation.accountId());
            ps.setString(4, r.workerId());
            ps.setString(5, r.model());
            ps.setLong(6, r.tokens().prompt());
            ps.setLong(7, r.tokens().cached());
            ps.setLong(8, r.tokens().completion());
            ps.setLong(9, r.tokens().reasoning());
            ps.setLong(10, r.clientCostNanoton());
            ps.setLong(11, r.workerFeeNanoton());
            ps.setLong(12, Micros.of(clock.instant()));
            ps.executeUpdate();
        }
    }

    /**
     * The reservation's row, checked against the receipt and against this book's gateway (another
     * gateway's reservation is not this book's to touch); {@code lock} takes the row lock.
     */
    private Stored stored(Connection c, Reservation reservation, boolean lock) throws SQLException {
        return stored(c, reservation, lock, gateway);
    }

    /** The reservation's row whichever gateway took it: for recovery and sweeps only. */
    private static Stored storedAnyGateway(Connection c, Reservation reservation, boolean lock) throws SQLException {
        return stored(c, reservation, lock, null);
    }

    private static Stored stored(Connection c, Reservation reservation, boolean lock, GatewayId owner) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT account_id, amount_nanoton, state, progress_nanoton, "
                + "charged_nanoton, released_nanoton, overrun_nanoton, recovered_by, gateway_id FROM reservations "
                + "WHERE reservation_id = ?" + (lock ? " FOR UPDATE" : ""))) {
            ps.setLong(1, reservation.id());
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw new UnknownReservationException(reservation, "never issued by this book");
                }
                Reservation issued = new Reservation(rs.getString(1), reservation.id(), rs.getLong(2));
                if (!issued.equals(reservation)) {
                    throw new UnknownReservationException(reservation, "this book issued " + issued);
                }
                if (owner != null && !owner.value().equals(rs.getString(9))) {
                    throw new UnknownReservationException(reservation, "taken by gateway " + rs.getString(9) + ", not " + owner);
                }
                String state = rs.getString(3);
                Settlement outcome = "open".equals(state) ? null
                        : new Settlement(issued, rs.getLong(5), rs.getLong(6), rs.getLong(7));
                return new Stored(state, rs.getLong(4), outcome, rs.getString(8));
            }
        }
    }

    private static AccountState state(Connection c, String accountId, boolean lock) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT balance_nanoton, reserved_nanoton, spent_nanoton "
                + "FROM accounts WHERE account_id = ?" + (lock ? " FOR UPDATE" : ""))) {
            ps.setString(1, accountId);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw new UnknownAccountException(accountId);
                }
                return new AccountState(accountId, rs.getLong(1), rs.getLong(2), rs.getLong(3));
            }
        }
    }

    /**
     * Changes the running totals relative to what is stored when the statement runs, never by
     * writing back values read earlier: a stale read can then cost nothing (see the class comment).
     */
    private static void addToTotals(Connection c, String accountId, long balanceDelta, long reservedDelta,
                                    long spentDelta) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE accounts SET balance_nanoton = balance_nanoton + ?, "
                + "reserved_nanoton = reserved_nanoton + ?, spent_nanoton = spent_nanoton + ? WHERE account_id = ?")) {
            ps.setLong(1, balanceDelta);
            ps.setLong(2, reservedDelta);
            ps.setLong(3, spentDelta);
            ps.setString(4, accountId);
            if (ps.executeUpdate() != 1) {
                throw new SQLException("account " + accountId + " vanished inside its own transaction");
            }
        }
    }

    private static Optional<Account> findAccount(Connection c, String column, String value) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT account_id, deposit_comment, opened_at_micros "
                + "FROM accounts WHERE " + column + " = ?")) {
            ps.setString(1, value);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Account(rs.getString(1), rs.getString(2), Micros.toInstant(rs.getLong(3))))
                        : Optional.empty();
            }
        }
    }

    private static void checkCost(long actualCostNanoton) {
        if (actualCostNanoton < 0) {
            throw new IllegalArgumentException("an actual cost must be >= 0, got " + actualCostNanoton);
        }
    }

    @FunctionalInterface
    interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    /**
     * Runs {@code work} in one transaction and commits it. A refusal (any RuntimeException, such as
     * an {@link org.cocoonjvm.billing.accounts.AccountException}) rolls back and propagates; a lost
     * race rolls back and runs again; any other database failure rolls back and becomes a
     * {@link LedgerUnavailableException}.
     *
     * <p>A transaction whose connection was lost before its COMMIT was sent did not happen (the
     * server rolls back what a dead session left open), so it runs once more on another connection:
     * after a database restart the first caller on each connection the restart killed still
     * succeeds. One lost at its COMMIT may have committed, and is never run again from here: the
     * caller hears of the failure, and whatever it retries must be safe to run twice (ending a
     * reservation is: a second end returns the first outcome).
     */
    <T> T tx(String operation, Work<T> work) {
        boolean ranAgainAfterLoss = false;
        for (int attempt = 1; ; attempt++) {
            ConnectionPool.Slot slot;
            try {
                slot = pool.borrow();
            } catch (SQLException e) {
                throw unavailable(operation, e);
            }
            Connection c = slot.connection();
            SQLException failure = null;
            boolean committing = false;
            try {
                T result = work.run(c);
                committing = true;
                c.commit();
                outage = null;
                return result;
            } catch (SQLException e) {
                failure = e;
                rollback(c);
            } catch (RuntimeException e) {
                rollback(c);
                outage = null;   // a refusal: the database answered
                throw e;
            } catch (Error e) {
                rollback(c);
                throw e;
            } finally {
                pool.giveBack(slot, failure);
            }
            if (ConnectionPool.lostConnection(failure) && !committing && !ranAgainAfterLoss) {
                ranAgainAfterLoss = true;
                continue;
            }
            if (!Dialect.retryable(failure) || attempt >= ATTEMPTS) {
                throw unavailable(operation, failure);
            }
            racesRunAgain.computeIfAbsent(Dialect.race(failure), reason -> new LongAdder()).increment();
            backOff(operation, attempt);
        }
    }

    /** The failure to throw; a lost or refused connection also marks the database as unreachable until a call succeeds. */
    private LedgerUnavailableException unavailable(String operation, SQLException cause) {
        LedgerUnavailableException failure = new LedgerUnavailableException(operation, cause);
        if (ConnectionPool.lostConnection(cause)) {
            outage = failure.getMessage();
        }
        return failure;
    }

    @Override
    public Map<String, Long> racesRunAgain() {
        Map<String, Long> counts = new TreeMap<>();
        racesRunAgain.forEach((reason, count) -> counts.put(reason, count.sum()));
        return counts;
    }

    /**
     * Why the database is unreachable, as the last call found: set by a call that
     * lost its connection or could not get one, cleared by the next call the database answers
     * (the lease keeper's beat, every few seconds, is one).
     */
    @Override
    public Optional<String> outage() {
        return stall().or(() -> Optional.ofNullable(outage));
    }

    /**
     * A call out longer than {@link #STALL}: the database hangs (a frozen primary, a partition)
     * rather than refuses, which the driver's socket time limit ends only after 10 s, and a
     * failover's hang lasts as long as the failover (audit N, N-1).
     */
    @Override
    public Optional<String> stall() {
        return pool.longestLent().filter(out -> out.compareTo(STALL) > 0)
                .map(out -> "the ledger's database has left a call unanswered for " + out.toMillis() + " ms");
    }

    /**
     * Waits a random while before running a lost race again, longer after each loss: transactions
     * that collided and retried at once (H2 at SERIALIZABLE refuses every loser) would mostly
     * collide again and use up their attempts.
     */
    private static void backOff(String operation, int attempt) {
        try {
            Thread.sleep(ThreadLocalRandom.current().nextLong(1, 1L << Math.min(attempt + 1, 7)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LedgerUnavailableException(operation, new SQLException("interrupted before a retry", "08001", e));
        }
    }

    private static void rollback(Connection c) {
        try {
            c.rollback();
        } catch (SQLException ignored) {
            // the connection is broken; the pool drops it when it comes back
        }
    }

    /** {@code value}, no longer than its column's {@code most} characters (never half a surrogate pair). */
    private static String cut(String value, int most) {
        if (value.length() <= most) {
            return value;
        }
        return value.substring(0, Character.isHighSurrogate(value.charAt(most - 1)) ? most - 1 : most);
    }

    /** URLs may carry a password; errors never show it. */
    private static String redacted(String url) {
        return url.replaceAll("(?i)(password=)[^&;]*", "$1***");
    }
}
