package org.cocoonjvm.billing.ledger;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.billing.accounts.UnknownReservationException;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.pricing.TokenCounts;

/**
 * An open reservation's life before it ends: taking the hold (only under this incarnation's
 * lease, stamped with its epoch) and recording its progress, one at a time or as a payment
 * round's batch with the worker shares. Separate from {@link Settlements} (how it ends) and
 * {@link Recovery} (who ends a dead gateway's): these are the writes that decide what an end
 * may bill, and the lock order and batching here are what keep a round from deadlocking.
 */
final class Reservations {
    /**
     * One statement: it takes the row lock, so it is ordered with a concurrent end (which reads
     * the row FOR UPDATE), and rechecks 'open' after any wait. Progress only rises.
     */
    private static final String PROGRESS_UPDATE = "UPDATE reservations SET progress_nanoton = ? "
            + "WHERE reservation_id = ? AND account_id = ? AND amount_nanoton = ? AND gateway_id = ? AND state = 'open' "
            + "AND progress_nanoton < ?";

    private final Clock clock;
    private final Transactions transactions;
    private final GatewayLease lease;
    private final Settlements settlements;

    Reservations(Clock clock, Transactions transactions, GatewayLease lease, Settlements settlements) {
        this.clock = clock;
        this.transactions = transactions;
        this.lease = lease;
        this.settlements = settlements;
    }

    Reservation reserve(String accountId, long amountNanoton, ReservationLabel label) {
        AccountState.checkId(accountId);
        if (amountNanoton < 0) {
            throw new IllegalArgumentException("a reservation must be >= 0 nanoTON, got " + amountNanoton);
        }
        lease.refuseIfKnownLost("refused to reserve");
        return transactions.tx("reserve", c -> {
            // Taken only while this incarnation holds the lease (a fenced one's hold would be swept
            // anyway); checked before the account row is locked, so the check adds nothing to how long that lock is held.
            if (!lease.holds(c)) {
                throw lease.lost("refused to reserve");
            }
            // The check and the hold in one statement, on the newest committed row (see JdbcAccountBook's class comment).
            try (PreparedStatement ps = c.prepareStatement("UPDATE accounts SET reserved_nanoton = reserved_nanoton + ? "
                    + "WHERE account_id = ? AND balance_nanoton - reserved_nanoton >= ?")) {
                ps.setLong(1, amountNanoton);
                ps.setString(2, accountId);
                ps.setLong(3, amountNanoton);
                if (ps.executeUpdate() == 0) {
                    AccountState s = Accounts.state(c, accountId, false);   // or UnknownAccountException
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
                ps.setString(4, lease.gateway().value());
                ps.setLong(5, lease.epoch());
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

    boolean recordProgress(Reservation reservation, long costSoFarNanoton) {
        checkProgress(costSoFarNanoton);
        return transactions.tx("record progress", c -> {
            try (PreparedStatement ps = c.prepareStatement(PROGRESS_UPDATE)) {
                bindProgress(ps, reservation, costSoFarNanoton);
                if (ps.executeUpdate() == 1) {
                    return true;
                }
            }
            // Nothing changed: say why (unknown, ended, or already at least this far).
            Settlements.Stored stored = settlements.stored(c, reservation, false);
            Settlements.refuseIfRecovered(stored);
            return "open".equals(stored.state());
        });
    }

    /**
     * All of {@code progress} in one transaction, with each share written on its reservation row
     * (V5): a crash leaves both or neither, so the fees a restarted payer owes match what is
     * billed. The latest share wins, since a retried request's later attempt (on another worker,
     * maybe) is the one its settlement bills. The fee is written only while the reservation is open
     * (after, its audit record holds the final one), and the channel too unless the settlement
     * named one. A reservation that recovery ended fails the whole batch ({@link
     * ReservationRecoveredException}): the payment round that asked must not pay for usage nobody
     * bills.
     */
    void recordProgress(Map<Reservation, Long> progress, Map<Reservation, WorkerShare> shares) {
        progress.values().forEach(Reservations::checkProgress);
        if (!progress.keySet().containsAll(shares.keySet())) {
            throw new IllegalArgumentException("a worker share for a reservation without progress");
        }
        if (progress.isEmpty()) {
            return;
        }
        List<Map.Entry<Reservation, Long>> ordered = new ArrayList<>(progress.entrySet());
        ordered.sort(Comparator.comparingLong(e -> e.getKey().id()));
        transactions.tx("record progress (batch)", c -> {
            // The accounts first, as every money change does, in one order. On PostgreSQL, the
            // shares' second update of a row this transaction already updated checks the
            // reservation's foreign key again, a KEY SHARE lock on its account: taken after the
            // reservations, while a settlement holds the account and waits for one of them, it
            // deadlocks under ordinary load, one second of stall each (audit L, 1).
            for (String account : new TreeSet<>(ordered.stream().map(e -> e.getKey().accountId()).toList())) {
                try {
                    Accounts.state(c, account, true);
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
                    Settlements.refuseIfRecovered(settlements.stored(c, reservation, false));
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
                            ps.setString(9, lease.gateway().value());
                            ps.addBatch();
                        }
                    }
                    ps.executeBatch();
                }
            }
            return null;
        });
    }

    private void bindProgress(PreparedStatement ps, Reservation reservation, long costSoFarNanoton)
            throws SQLException {
        ps.setLong(1, costSoFarNanoton);
        ps.setLong(2, reservation.id());
        ps.setString(3, reservation.accountId());
        ps.setLong(4, reservation.amountNanoton());
        ps.setString(5, lease.gateway().value());
        ps.setLong(6, costSoFarNanoton);
    }

    private static void checkProgress(long costSoFarNanoton) {
        if (costSoFarNanoton < 0) {
            throw new IllegalArgumentException("progress must be >= 0 nanoTON, got " + costSoFarNanoton);
        }
    }

    /** {@code value}, no longer than its column's {@code most} characters (never half a surrogate pair). */
    static String cut(String value, int most) {
        if (value.length() <= most) {
            return value;
        }
        return value.substring(0, Character.isHighSurrogate(value.charAt(most - 1)) ? most - 1 : most);
    }
}
