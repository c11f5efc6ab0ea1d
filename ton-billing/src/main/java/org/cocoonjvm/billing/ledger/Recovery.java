package org.cocoonjvm.billing.ledger;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.pricing.TokenCounts;

/**
 * Ending reservations whose owner is gone: this gateway's own at its start, and, in a sweep, those
 * of incarnations that are not their gateway's current one. Each ends at its last recorded
 * progress, in a transaction of its own, with {@code recovered_by} set and the request's audit
 * row written, and is reported by whichever call ended it. Separate from {@link Settlements}
 * because it ends reservations that are not this book's own, on behalf of a dead process, and
 * reports what it ended rather than answering an owner.
 */
final class Recovery {
    private final Transactions transactions;
    private final GatewayId gateway;
    private final Settlements settlements;

    Recovery(Transactions transactions, GatewayId gateway, Settlements settlements) {
        this.transactions = transactions;
        this.gateway = gateway;
        this.settlements = settlements;
    }

    /** See {@link JdbcAccountBook#recoverOpenReservations()}. */
    List<RecoveredReservation> ownOpen() {
        return recover("find open reservations", "SELECT account_id, reservation_id, amount_nanoton FROM reservations "
                + "WHERE state = 'open' AND gateway_id = ? ORDER BY reservation_id", gateway.value());
    }

    /** A sweep's second step, after {@link GatewayLease#fenceExpired()}: see {@link JdbcAccountBook#sweep()}. */
    List<RecoveredReservation> ofFencedIncarnations() {
        // A reservation of a gateway without a lease row was taken before V6 by a gateway that never started since.
        return recover("find reservations of fenced incarnations", "SELECT r.account_id, r.reservation_id, r.amount_nanoton "
                + "FROM reservations r LEFT JOIN gateway_leases l ON l.gateway_id = r.gateway_id "
                + "WHERE r.state = 'open' AND (l.epoch IS NULL OR r.lease_epoch < l.epoch) ORDER BY r.reservation_id", null);
    }

    /** Ends what {@code query} finds (with {@code gatewayParameter} bound, if not null) as recovered by this gateway. */
    private List<RecoveredReservation> recover(String operation, String query, String gatewayParameter) {
        List<Reservation> open = transactions.tx(operation, c -> {
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
        return transactions.tx("recover", c -> {
            Settlements.lockAccount(c, reservation);
            Settlements.Stored stored = Settlements.storedAnyGateway(c, reservation, true);
            if (stored.outcome() != null) {
                return Optional.empty();
            }
            Settlement settlement = settlements.endOpen(c, reservation, stored, Settlements.atProgress(reservation), null,
                    gateway);
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
                        settlements.insertRequest(c, reservation, new RequestRecord(label.requestId(), rs.getString(4), null,
                                label.model(), tokens, settlement.chargedNanoton(), rs.getLong(9)));
                    }
                    return Optional.of(new RecoveredReservation(settlement, label, rs.getString(4), tokens));
                }
            }
        });
    }
}
