package org.cocoonjvm.billing.ledger;

import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.accounts.WorkerShare;

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
 *
 * <p>This class opens the book and hands each call to the part that owns it, each in this package:
 * {@link Transactions} (the pool, one transaction per call, retries, outages), {@link
 * GatewayLease} (the lease and its epoch), {@link Accounts} (accounts, credits, the running
 * totals), {@link Reservations} (holds and their progress), {@link Settlements} (how a
 * reservation ends, and the audit it writes) and {@link Recovery} (ending a dead gateway's).
 */
public final class JdbcAccountBook implements AccountBook, AutoCloseable {
    public static final int DEFAULT_POOL_SIZE = 8;
    /**
     * How long a gateway that stopped renewing keeps its reservations before any other gateway may
     * end them: above the longest request (the relay's 10-minute timeout), so that only a gateway
     * silent for longer than any request could run is presumed dead.
     */
    public static final Duration DEFAULT_LEASE_EXPIRY = Duration.ofMinutes(15);

    private final Clock clock;
    private final Transactions transactions;
    private final GatewayLease lease;
    private final Accounts accounts;
    private final Settlements settlements;
    private final Reservations reservations;
    private final Recovery recovery;

    private JdbcAccountBook(Clock clock, ConnectionPool pool, GatewayId gateway, Duration leaseExpiry, boolean exclusive) {
        this.clock = clock;
        this.transactions = new Transactions(pool);
        this.lease = new GatewayLease(clock, transactions, gateway, leaseExpiry, exclusive);
        this.accounts = new Accounts(clock, transactions);
        this.settlements = new Settlements(clock, transactions, gateway);
        this.reservations = new Reservations(clock, transactions, lease, settlements);
        this.recovery = new Recovery(transactions, gateway, settlements);
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
        Objects.requireNonNull(clock, "clock");
        Objects.requireNonNull(gateway, "gateway");
        Objects.requireNonNull(leaseExpiry, "leaseExpiry");
        Dialect dialect = Dialect.of(url);
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
            book.lease.take(takeOver, waiting, heldDataDir);
        } catch (RuntimeException | Error e) {  // an OutOfMemoryError too: the pool's connections must not outlive it
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
        return lease.gateway();
    }

    /** This incarnation's lease epoch: one more than the previous process with the same gateway id had. */
    public long epoch() {
        return lease.epoch();
    }

    /** How this incarnation took its lease, and whose it was. */
    public LeaseStart leaseStart() {
        return lease.leaseStart();
    }

    /** An H2 database that only this process can have open: not a server's ({@code tcp:}, {@code ssl:}, {@code AUTO_SERVER}). */
    private static boolean embedded(String url) {
        String upper = url.toUpperCase(java.util.Locale.ROOT);
        return !upper.startsWith("JDBC:H2:TCP:") && !upper.startsWith("JDBC:H2:SSL:") && !upper.contains(";AUTO_SERVER=TRUE");
    }

    /** URLs may carry a password; errors never show it. */
    private static String redacted(String url) {
        return url.replaceAll("(?i)(password=)[^&;]*", "$1***");
    }

    /**
     * Runs {@code listener} once, on the thread of whichever call first finds this incarnation
     * fenced: a reservation, a channel state, a renewal. A fenced gateway must stop serving at the
     * first sign, not at its next lease beat: what it relays meanwhile is billed to nobody.
     */
    public void whenLeaseLost(Consumer<LeaseLostException> listener) {
        lease.whenLost(listener);
    }

    /** The lease is found lost (by {@link JdbcChannelJournal}): the listener is told, once; returns what to throw. */
    LeaseLostException leaseLost(String what) {
        return lease.lost(what);
    }

    /** Whether this incarnation still holds its gateway's lease, as {@code c} sees it. */
    boolean holdsLease(java.sql.Connection c) throws SQLException {
        return lease.holds(c);
    }

    /**
     * Pushes this gateway's lease expiry to now + the expiry. Renewing a lease that expired is fine
     * as long as nobody fenced it: a sweep bumps the epoch before it ends anything.
     *
     * @throws LeaseLostException if this incarnation was fenced (by a sweep, or a newer process with this id)
     */
    public void renewLease() {
        lease.renew();
    }

    /**
     * When this incarnation's lease expires as far as it knows: its last renewal that committed
     * (or its start) plus the expiry, read before the write, so never later than the row says.
     * From then on any peer's sweep may fence it and end its reservations.
     */
    public Instant leaseExpiresAt() {
        return lease.expiresAt();
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
        lease.fenceExpired();
        return recovery.ofFencedIncarnations();
    }

    @Override
    public Account open(String accountId) {
        return accounts.open(accountId);
    }

    @Override
    public AccountState balance(String accountId) {
        return accounts.balance(accountId);
    }

    @Override
    public Account account(String accountId) {
        return accounts.account(accountId);
    }

    @Override
    public Optional<Account> accountByDepositComment(String depositComment) {
        return accounts.byDepositComment(depositComment);
    }

    @Override
    public boolean credit(String accountId, long amountNanoton, String reference) {
        return accounts.credit(accountId, amountNanoton, reference);
    }

    @Override
    public boolean creditOnce(String accountId, long amountNanoton, String reference) {
        return accounts.creditOnce(accountId, amountNanoton, reference);
    }

    @Override
    public Reservation reserve(String accountId, long amountNanoton, ReservationLabel label) {
        return reservations.reserve(accountId, amountNanoton, label);
    }

    @Override
    public Settlement settle(Reservation reservation, long actualCostNanoton) {
        return settlements.settle(reservation, actualCostNanoton);
    }

    @Override
    public Settlement settle(Reservation reservation, RequestRecord request) {
        return settlements.settle(reservation, request);
    }

    @Override
    public Settlement release(Reservation reservation) {
        return settlements.release(reservation);
    }

    /**
     * Two primary-key lookups, whatever the ledger's size: the record by its request id, then its
     * reservation, whose charge is what the account paid (the record's client cost, or the
     * progress where that was higher). The account is a condition of the same statement, so
     * another account's request reads exactly as an unknown one.
     */
    @Override
    public Optional<BilledRequest> request(String accountId, String requestId) {
        return settlements.request(accountId, requestId);
    }

    @Override
    public boolean recordProgress(Reservation reservation, long costSoFarNanoton) {
        return reservations.recordProgress(reservation, costSoFarNanoton);
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
     * A reservation that recovery ended fails the whole batch ({@link ReservationRecoveredException}):
     * the payment round that asked must not pay for usage nobody bills.
     */
    @Override
    public void recordProgress(Map<Reservation, Long> progress, Map<Reservation, WorkerShare> shares) {
        reservations.recordProgress(progress, shares);
    }

    /**
     * Ends every open reservation of this book's gateway (the reservations of other gateways are
     * theirs, or {@link #sweep()}'s once their lease expires), each at its last recorded progress.
     */
    @Override
    public List<RecoveredReservation> recoverOpenReservations() {
        return recovery.ownOpen();
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
        return settlements.requests(accountId);
    }

    @Override
    public void close() {
        lease.leave();
        transactions.close();
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
        lease.keepAtClose();
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
        lease.markStopping(within);
    }

    /** One transaction on this book's database, for {@link JdbcChannelJournal}: see {@link Transactions#tx}. */
    <T> T tx(String operation, Transactions.Work<T> work) {
        return transactions.tx(operation, work);
    }

    @Override
    public Map<String, Long> racesRunAgain() {
        return transactions.racesRunAgain();
    }

    /**
     * Why the database is unreachable, as the last call found: set by a call that
     * lost its connection or could not get one, cleared by the next call the database answers
     * (the lease keeper's beat, every few seconds, is one).
     */
    @Override
    public Optional<String> outage() {
        return transactions.outage();
    }

    /**
     * A call out longer than {@link Transactions#STALL}: the database hangs (a frozen primary, a
     * partition) rather than refuses, which the driver's socket time limit ends only after 10 s,
     * and a failover's hang lasts as long as the failover (audit N, N-1).
     */
    @Override
    public Optional<String> stall() {
        return transactions.stall();
    }
}
