package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.CreditConflictException;
import org.cocoonjvm.billing.accounts.DepositComments;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.billing.accounts.UnknownReservationException;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.pricing.TokenCounts;

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
 * <p>Calls block on the database: never call them on an event loop. The gateway runs them on a
 * pool of its own threads.
 */
public final class JdbcAccountBook implements AccountBook, AutoCloseable {
    public static final int DEFAULT_POOL_SIZE = 8;
    private static final int ATTEMPTS = 8;

    private final Clock clock;
    private final Dialect dialect;
    private final ConnectionPool pool;

    private JdbcAccountBook(Clock clock, Dialect dialect, ConnectionPool pool) {
        this.clock = clock;
        this.dialect = dialect;
        this.pool = pool;
    }

    /**
     * Connects, migrates the schema to {@link Migrations#latest()}, and returns the book. It does not
     * {@link #recoverOpenReservations() recover}: the owner does that once it is ready to.
     *
     * @param url a {@code jdbc:h2:...} or {@code jdbc:postgresql:...} URL, credentials included
     * @throws LedgerUnavailableException if the database cannot be reached or migrated
     */
    public static JdbcAccountBook open(String url, Clock clock, int poolSize) {
        Dialect dialect = Dialect.of(url);
        Objects.requireNonNull(clock, "clock");
        ConnectionPool pool;
        try {
            pool = new ConnectionPool(dialect.connectUrl(url), dialect.isolation(), poolSize);
        } catch (SQLException e) {
            throw new LedgerUnavailableException("connect to " + redacted(url), e);
        }
        JdbcAccountBook book = new JdbcAccountBook(clock, dialect, pool);
        try {
            book.tx("migrate", c -> Migrations.apply(c, clock));
        } catch (RuntimeException e) {
            pool.close();
            throw e;
        }
        return book;
    }

    public static JdbcAccountBook open(String url, Clock clock) {
        return open(url, clock, DEFAULT_POOL_SIZE);
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
            Math.addExact(s.balanceNanoton(), amountNanoton);   // throws before anything is written
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO credits (reference, account_id, amount_nanoton, "
                    + "credited_at_micros) VALUES (?, ?, ?, ?)")) {
                ps.setString(1, reference);
                ps.setString(2, accountId);
                ps.setLong(3, amountNanoton);
                ps.setLong(4, Micros.of(clock.instant()));
                ps.executeUpdate();
            }
            addToTotals(c, accountId, amountNanoton, 0, 0);
            return true;
        });
    }

    @Override
    public Reservation reserve(String accountId, long amountNanoton) {
        AccountState.checkId(accountId);
        if (amountNanoton < 0) {
            throw new IllegalArgumentException("a reservation must be >= 0 nanoTON, got " + amountNanoton);
        }
        return tx("reserve", c -> {
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
                    + "progress_nanoton, state, reserved_at_micros) VALUES (?, ?, 0, 'open', ?)",
                    Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, accountId);
                ps.setLong(2, amountNanoton);
                ps.setLong(3, Micros.of(clock.instant()));
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
        return end("settle", reservation, progress -> Settlement.charge(reservation, Math.max(actualCostNanoton, progress)), null);
    }

    @Override
    public Settlement settle(Reservation reservation, RequestRecord request) {
        Objects.requireNonNull(request, "request");
        long cost = request.clientCostNanoton();
        return end("settle", reservation, progress -> Settlement.charge(reservation, Math.max(cost, progress)), request);
    }

    @Override
    public Settlement release(Reservation reservation) {
        // A release after recorded progress is a settlement at that progress: that usage happened.
        return end("release", reservation, progress -> progress == 0 ? Settlement.release(reservation)
                : Settlement.charge(reservation, progress), null);
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
            return "open".equals(stored(c, reservation, false).state());
        });
    }

    /**
     * All of {@code progress} in one transaction: the payment round's checkpoint, whatever the
     * number of requests it covers. Rows are updated in reservation order, so two batches never
     * wait on each other's locks in opposite orders.
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
     * its audit record holds the final one), but the channel always: a short request may settle
     * before any round checkpoints it, and its audited fee is still owed on that channel.
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
            try (PreparedStatement ps = c.prepareStatement(PROGRESS_UPDATE)) {
                for (Map.Entry<Reservation, Long> e : ordered) {
                    bindProgress(ps, e.getKey(), e.getValue());
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            if (!shares.isEmpty()) {
                try (PreparedStatement ps = c.prepareStatement("UPDATE reservations SET channel_id = ?, "
                        + "worker_fee_nanoton = CASE WHEN state = 'open' THEN ? ELSE worker_fee_nanoton END "
                        + "WHERE reservation_id = ?")) {
                    for (Map.Entry<Reservation, Long> e : ordered) {
                        WorkerShare share = shares.get(e.getKey());
                        if (share != null) {
                            ps.setString(1, share.channelId());
                            ps.setLong(2, share.feeNanoton());
                            ps.setLong(3, e.getKey().id());
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

    @Override
    public List<Settlement> recoverOpenReservations() {
        List<Reservation> open = tx("find open reservations", c -> {
            List<Reservation> found = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT account_id, reservation_id, amount_nanoton "
                    + "FROM reservations WHERE state = 'open' ORDER BY reservation_id");
                 ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    found.add(new Reservation(rs.getString(1), rs.getLong(2), rs.getLong(3)));
                }
            }
            return found;
        });
        List<Settlement> ended = new ArrayList<>(open.size());
        for (Reservation reservation : open) {
            ended.add(release(reservation));
        }
        return ended;
    }

    /**
     * One statement: it takes the row lock, so it is ordered with a concurrent end() (which reads
     * the row FOR UPDATE), and rechecks 'open' after any wait. Progress only rises.
     */
    private static final String PROGRESS_UPDATE = "UPDATE reservations SET progress_nanoton = ? "
            + "WHERE reservation_id = ? AND account_id = ? AND amount_nanoton = ? AND state = 'open' "
            + "AND progress_nanoton < ?";

    private static void bindProgress(PreparedStatement ps, Reservation reservation, long costSoFarNanoton)
            throws SQLException {
        ps.setLong(1, costSoFarNanoton);
        ps.setLong(2, reservation.id());
        ps.setString(3, reservation.accountId());
        ps.setLong(4, reservation.amountNanoton());
        ps.setLong(5, costSoFarNanoton);
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
            try (PreparedStatement ps = c.prepareStatement("SELECT request_id, worker_id, model, prompt_tokens, "
                    + "cached_tokens, completion_tokens, reasoning_tokens, client_cost_nanoton, worker_fee_nanoton "
                    + "FROM requests WHERE account_id = ? ORDER BY reservation_id")) {
                ps.setString(1, accountId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        records.add(new RequestRecord(rs.getString(1), rs.getString(2), rs.getString(3),
                                new TokenCounts(rs.getLong(4), rs.getLong(5), rs.getLong(6), rs.getLong(7)),
                                rs.getLong(8), rs.getLong(9)));
                    }
                }
            }
            return records;
        });
    }

    @Override
    public void close() {
        pool.close();
    }

    /** What a reservation row holds. */
    private record Stored(String state, long progressNanoton, Settlement outcome) {
    }

    @FunctionalInterface
    private interface Outcome {
        Settlement at(long progressNanoton);
    }

    private Settlement end(String operation, Reservation reservation, Outcome outcome, RequestRecord request) {
        Objects.requireNonNull(reservation, "reservation");
        return tx(operation, c -> {
            // The account row first, as every money change does: one lock order, no deadlocks.
            try {
                state(c, reservation.accountId(), true);
            } catch (UnknownAccountException e) {
                throw new UnknownReservationException(reservation, "never issued by this book");
            }
            Stored stored = stored(c, reservation, true);
            if (stored.outcome() != null) {
                return stored.outcome();
            }
            Settlement settlement = outcome.at(stored.progressNanoton());
            // Ends it only if it is still open at the progress the outcome was computed from.
            try (PreparedStatement ps = c.prepareStatement("UPDATE reservations SET state = ?, charged_nanoton = ?, "
                    + "released_nanoton = ?, overrun_nanoton = ?, ended_at_micros = ? "
                    + "WHERE reservation_id = ? AND state = 'open' AND progress_nanoton = ?")) {
                // Told apart by the outcome alone: a settlement at cost 0 is a release, to the nanoTON.
                ps.setString(1, settlement.chargedNanoton() == 0 ? "released" : "settled");
                ps.setLong(2, settlement.chargedNanoton());
                ps.setLong(3, settlement.releasedNanoton());
                ps.setLong(4, settlement.overrunNanoton());
                ps.setLong(5, Micros.of(clock.instant()));
                ps.setLong(6, reservation.id());
                ps.setLong(7, stored.progressNanoton());
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
        });
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

    /** The reservation's row, checked against the receipt; {@code lock} takes the row lock. */
    private static Stored stored(Connection c, Reservation reservation, boolean lock) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT account_id, amount_nanoton, state, progress_nanoton, "
                + "charged_nanoton, released_nanoton, overrun_nanoton FROM reservations WHERE reservation_id = ?"
                + (lock ? " FOR UPDATE" : ""))) {
            ps.setLong(1, reservation.id());
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw new UnknownReservationException(reservation, "never issued by this book");
                }
                Reservation issued = new Reservation(rs.getString(1), reservation.id(), rs.getLong(2));
                if (!issued.equals(reservation)) {
                    throw new UnknownReservationException(reservation, "this book issued " + issued);
                }
                String state = rs.getString(3);
                Settlement outcome = "open".equals(state) ? null
                        : new Settlement(issued, rs.getLong(5), rs.getLong(6), rs.getLong(7));
                return new Stored(state, rs.getLong(4), outcome);
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
     */
    <T> T tx(String operation, Work<T> work) {
        for (int attempt = 1; ; attempt++) {
            Connection c;
            try {
                c = pool.borrow();
            } catch (SQLException e) {
                throw new LedgerUnavailableException(operation, e);
            }
            boolean failed = false;
            try {
                T result = work.run(c);
                c.commit();
                return result;
            } catch (SQLException e) {
                failed = !Dialect.retryable(e);
                rollback(c);
                if (failed || attempt == ATTEMPTS) {
                    throw new LedgerUnavailableException(operation, e);
                }
            } catch (RuntimeException | Error e) {
                rollback(c);
                throw e;
            } finally {
                pool.giveBack(c, failed);
            }
            backOff(operation, attempt);
        }
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
            // the connection is broken; the pool replaces it when it comes back
        }
    }

    /** URLs may carry a password; errors never show it. */
    private static String redacted(String url) {
        return url.replaceAll("(?i)(password=)[^&;]*", "$1***");
    }
}
