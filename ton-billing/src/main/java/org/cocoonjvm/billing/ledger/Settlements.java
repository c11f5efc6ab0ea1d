package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.billing.accounts.UnknownReservationException;
import org.cocoonjvm.billing.pricing.TokenCounts;

/**
 * How a reservation ends, and the audit it leaves: the owner's settle and release, the one
 * conditional {@code UPDATE} that ends a reservation whoever asks ({@link #endOpen}, which
 * recovery uses too), the {@code requests} rows written with it, and the reads of them. Separate
 * from taking and checkpointing reservations ({@link Reservations}) because "ends once, and a
 * second call returns the first outcome" is its own argument, shared by the owner and recovery.
 */
final class Settlements {
    private final Clock clock;
    private final Transactions transactions;
    private final GatewayId gateway;

    Settlements(Clock clock, Transactions transactions, GatewayId gateway) {
        this.clock = clock;
        this.transactions = transactions;
        this.gateway = gateway;
    }

    /** What a reservation row holds; {@code recoveredBy} is null unless recovery ended it. */
    record Stored(String state, long progressNanoton, Settlement outcome, String recoveredBy) {
    }

    @FunctionalInterface
    interface Outcome {
        Settlement at(long progressNanoton);
    }

    Settlement settle(Reservation reservation, long actualCostNanoton) {
        checkCost(actualCostNanoton);
        return end("settle", reservation, progress -> Settlement.charge(reservation, Math.max(actualCostNanoton, progress)),
                null);
    }

    Settlement settle(Reservation reservation, RequestRecord request) {
        Objects.requireNonNull(request, "request");
        long cost = request.clientCostNanoton();
        return end("settle", reservation, progress -> Settlement.charge(reservation, Math.max(cost, progress)), request);
    }

    Settlement release(Reservation reservation) {
        return end("release", reservation, atProgress(reservation), null);
    }

    /** A release after recorded progress is a settlement at that progress: that usage happened. */
    static Outcome atProgress(Reservation reservation) {
        return progress -> progress == 0 ? Settlement.release(reservation) : Settlement.charge(reservation, progress);
    }

    /**
     * The owner's settle or release: refused if recovery ended the reservation, the first outcome
     * if it already ended otherwise.
     *
     * @param request the audit record to keep with a settlement; null for none
     */
    private Settlement end(String operation, Reservation reservation, Outcome outcome, RequestRecord request) {
        Objects.requireNonNull(reservation, "reservation");
        return transactions.tx(operation, c -> {
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
    static void lockAccount(Connection c, Reservation reservation) throws SQLException {
        try {
            Accounts.state(c, reservation.accountId(), true);
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
    Settlement endOpen(Connection c, Reservation reservation, Stored stored, Outcome outcome, RequestRecord request,
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
        Accounts.addToTotals(c, reservation.accountId(), Math.negateExact(settlement.chargedNanoton()),
                Math.negateExact(reservation.amountNanoton()), settlement.chargedNanoton());
        if (request != null) {
            insertRequest(c, reservation, request);
        }
        return settlement;
    }

    /** Writes the audit record of a request its reservation's end billed. */
    void insertRequest(Connection c, Reservation reservation, RequestRecord r) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO requests (request_id, reservation_id, account_id, "
                + "worker_id, model, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, "
                + "client_cost_nanoton, worker_fee_nanoton, recorded_at_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
            // Cut to their columns, as the reservation's label was: a name too long for the audit
            // must not fail the settlement that bills the request.
            ps.setString(1, Reservations.cut(r.requestId(), 100));
            ps.setLong(2, reservation.id());
            ps.setString(3, reservation.accountId());
            ps.setString(4, r.workerId() == null ? null : Reservations.cut(r.workerId(), 1000));
            ps.setString(5, Reservations.cut(r.model(), 1000));
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
    Stored stored(Connection c, Reservation reservation, boolean lock) throws SQLException {
        return stored(c, reservation, lock, gateway);
    }

    /** The reservation's row whichever gateway took it: for recovery and sweeps only. */
    static Stored storedAnyGateway(Connection c, Reservation reservation, boolean lock) throws SQLException {
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

    /** An owner's call on a reservation that recovery ended: refused, see {@link ReservationRecoveredException}. */
    static void refuseIfRecovered(Stored stored) {
        if (stored.recoveredBy() != null) {
            throw new ReservationRecoveredException(stored.outcome(), "gateway " + stored.recoveredBy());
        }
    }

    private static void checkCost(long actualCostNanoton) {
        if (actualCostNanoton < 0) {
            throw new IllegalArgumentException("an actual cost must be >= 0, got " + actualCostNanoton);
        }
    }

    /** See {@link JdbcAccountBook#request(String, String)}. */
    Optional<BilledRequest> request(String accountId, String requestId) {
        AccountState.checkId(accountId);
        if (requestId == null) {
            return Optional.empty();
        }
        return transactions.tx("read request", c -> {
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

    /** See {@link JdbcAccountBook#requests(String)}. */
    List<RequestRecord> requests(String accountId) {
        AccountState.checkId(accountId);
        return transactions.tx("read requests", c -> {
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
}
