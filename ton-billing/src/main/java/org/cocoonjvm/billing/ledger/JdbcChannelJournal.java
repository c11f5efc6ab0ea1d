package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SignedSemiChannel;

/**
 * The durable {@link ChannelJournal}, in the ledger's database (tables {@code payer_keys} and
 * {@code channels}, migrations V3, V6 and V7): one short transaction per call, through the ledger's own
 * connections. A signed state is committed here before the caller sends it, so after any crash
 * the journal holds a state at least as high as any the payee has seen, and the next one signed
 * goes above it.
 *
 * <p>Everything here is the ledger's gateway's own: its key, its channels (a worker registered with
 * two gateways has a channel with each). A state is recorded only while that gateway's current
 * incarnation holds its lease, so a fenced process cannot sign on ({@link LeaseLostException}).
 */
public final class JdbcChannelJournal implements ChannelJournal {
    private static final HexFormat HEX = HexFormat.of();

    private final JdbcAccountBook ledger;
    private final Clock clock;
    private final String gateway;

    JdbcChannelJournal(JdbcAccountBook ledger, Clock clock) {
        this.ledger = ledger;
        this.clock = clock;
        this.gateway = ledger.gateway().value();
    }

    @Override
    public PaymentKeyPair payerKey(Supplier<PaymentKeyPair> generate) {
        // A racing first start inserts the same primary key; the loser runs again (23505) and reads the winner's.
        return ledger.tx("payer key", c -> {
            Optional<PaymentKeyPair> stored = storedKey(c);
            if (stored.isPresent()) {
                return stored.get();
            }
            PaymentKeyPair fresh = generate.get();
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO payer_keys (gateway_id, seed_hex, created_at_micros) VALUES (?, ?, ?)")) {
                ps.setString(1, gateway);
                ps.setString(2, HEX.formatHex(fresh.seed()));
                ps.setLong(3, Micros.of(clock.instant()));
                ps.executeUpdate();
            }
            return fresh;
        });
    }

    @Override
    public Entry open(PaymentPublicKey payeeKey, Supplier<ChannelId> newId) {
        return ledger.tx("open channel", c -> current(c, payeeKey, newId));
    }

    @Override
    public Entry replace(PaymentPublicKey payeeKey, ChannelId retiring, Supplier<ChannelId> newId) {
        return ledger.tx("replace channel", c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT current_payee_key FROM channels "
                    + "WHERE gateway_id = ? AND payee_key = ? AND channel_id = ?")) {
                ps.setString(1, gateway);
                ps.setString(2, payeeKey.hex());
                ps.setString(3, retiring.hex());
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        throw new IllegalStateException("no open channel " + retiring + " of " + payeeKey + " in the journal");
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("UPDATE channels SET current_payee_key = NULL, "
                    + "updated_at_micros = ? WHERE gateway_id = ? AND channel_id = ?")) {
                ps.setLong(1, Micros.of(clock.instant()));
                ps.setString(2, gateway);
                ps.setString(3, retiring.hex());
                ps.executeUpdate();
            }
            return current(c, payeeKey, newId);
        });
    }

    /**
     * {@code payeeKey}'s current channel, inserted with {@code newId} when it has none. A racing
     * insert for the same key breaks the one-current constraint (23505), and the transaction runs again.
     */
    private Entry current(Connection c, PaymentPublicKey payeeKey, Supplier<ChannelId> newId) throws SQLException {
        Optional<Entry> existing = find(c, payeeKey);
        if (existing.isPresent()) {
            return existing.get();
        }
        PaymentKeyPair payer = storedKey(c).orElseThrow(() ->
                new IllegalStateException("the journal has no payer key yet: call payerKey first"));
        ChannelId id = newId.get();
        long now = Micros.of(clock.instant());
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO channels (gateway_id, payee_key, current_payee_key, "
                + "channel_id, payer_key, last_seqno, last_sent_nanoton, opened_at_micros, updated_at_micros) "
                + "VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)")) {
            ps.setString(1, gateway);
            ps.setString(2, payeeKey.hex());
            ps.setString(3, payeeKey.hex());
            ps.setString(4, id.hex());
            ps.setString(5, payer.publicKey().hex());
            ps.setLong(6, now);
            ps.setLong(7, now);
            ps.executeUpdate();
        }
        return new Entry(id, payeeKey, SemiChannelBody.INITIAL, null, 0, null);
    }

    @Override
    public List<Entry> openChannels() {
        return ledger.tx("list open channels", c -> {
            List<Entry> open = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT " + ENTRY_COLUMNS + ", payee_key FROM channels "
                    + "WHERE gateway_id = ? ORDER BY opened_at_micros")) {
                ps.setString(1, gateway);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        open.add(entry(c, rs, PaymentPublicKey.of(HEX.parseHex(rs.getString(7)))));
                    }
                }
            }
            return open;
        });
    }

    @Override
    public void closed(PaymentPublicKey payeeKey, ChannelId closed) {
        ledger.tx("record closed channel", c -> {
            // Copy then delete in one transaction: the channel is either open or in the record.
            try (PreparedStatement copy = c.prepareStatement("INSERT INTO closed_channels (gateway_id, channel_id, payee_key, "
                    + "payer_key, last_seqno, last_sent_nanoton, last_state_boc, payee_state_boc, opened_at_micros, "
                    + "contract_address, payout_address, closed_at_micros) SELECT gateway_id, channel_id, payee_key, "
                    + "payer_key, last_seqno, last_sent_nanoton, last_state_boc, payee_state_boc, opened_at_micros, "
                    + "contract_address, payout_address, ? FROM channels "
                    + "WHERE gateway_id = ? AND payee_key = ? AND channel_id = ?");
                 PreparedStatement delete = c.prepareStatement(
                         "DELETE FROM channels WHERE gateway_id = ? AND payee_key = ? AND channel_id = ?")) {
                copy.setLong(1, Micros.of(clock.instant()));
                copy.setString(2, gateway);
                copy.setString(3, payeeKey.hex());
                copy.setString(4, closed.hex());
                copy.executeUpdate();
                delete.setString(1, gateway);
                delete.setString(2, payeeKey.hex());
                delete.setString(3, closed.hex());
                delete.executeUpdate();
            }
            return null;
        });
    }

    @Override
    public Optional<Entry> closedChannel(PaymentPublicKey payeeKey, ChannelId id) {
        return ledger.tx("read closed channel", c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT " + ENTRY_COLUMNS + " FROM closed_channels "
                    + "WHERE gateway_id = ? AND payee_key = ? AND channel_id = ?")) {
                ps.setString(1, gateway);
                ps.setString(2, payeeKey.hex());
                ps.setString(3, id.hex());
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? Optional.of(entry(c, rs, payeeKey)) : Optional.empty();
                }
            }
        });
    }

    @Override
    public Map<PaymentPublicKey, ClosedTotals> closedTotals() {
        return ledger.tx("total closed channels", c -> {
            Map<PaymentPublicKey, ClosedTotals> totals = new HashMap<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT payee_key, COUNT(*), SUM(last_sent_nanoton) "
                    + "FROM closed_channels WHERE gateway_id = ? GROUP BY payee_key")) {
                ps.setString(1, gateway);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        totals.put(PaymentPublicKey.of(HEX.parseHex(rs.getString(1))), new ClosedTotals(rs.getLong(2),
                                rs.getLong(3)));
                    }
                }
            }
            return totals;
        });
    }

    @Override
    public void signed(SignedSemiChannel state) {
        ledger.tx("record signed state", c -> {
            // The extension check, the lease check and the write are one statement, so two writers
            // cannot both pass it, and a fenced incarnation passes none.
            try (PreparedStatement ps = c.prepareStatement("UPDATE channels SET last_seqno = ?, last_sent_nanoton = ?, "
                    + "last_state_boc = ?, updated_at_micros = ? WHERE gateway_id = ? AND channel_id = ? AND last_seqno < ? "
                    + "AND last_sent_nanoton <= ? AND EXISTS (SELECT 1 FROM gateway_leases l WHERE l.gateway_id = ? "
                    + "AND l.epoch = ?)")) {
                ps.setLong(1, state.seqno());
                ps.setLong(2, state.sentNanoton());
                ps.setString(3, HEX.formatHex(state.boc()));
                ps.setLong(4, Micros.of(clock.instant()));
                ps.setString(5, gateway);
                ps.setString(6, state.channelId().hex());
                ps.setLong(7, state.seqno());
                ps.setLong(8, state.sentNanoton());
                ps.setString(9, gateway);
                ps.setLong(10, ledger.epoch());
                if (ps.executeUpdate() == 1) {
                    return null;
                }
            }
            if (!ledger.holdsLease(c)) {
                throw ledger.leaseLost("refused to record a state on channel " + state.channelId());
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT last_seqno, last_sent_nanoton FROM channels WHERE gateway_id = ? AND channel_id = ?")) {
                ps.setString(1, gateway);
                ps.setString(2, state.channelId().hex());
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        throw new IllegalStateException("no channel " + state.channelId() + " in the journal");
                    }
                    throw new IllegalStateException("state " + state.state().body() + " does not extend the recorded "
                            + new SemiChannelBody(rs.getLong(1), rs.getLong(2)) + " on channel " + state.channelId());
                }
            }
        });
    }

    @Override
    public void payeeState(SignedSemiChannel state) {
        ledger.tx("record payee state", c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "UPDATE channels SET payee_state_boc = ?, updated_at_micros = ? WHERE gateway_id = ? AND channel_id = ?")) {
                ps.setString(1, HEX.formatHex(state.boc()));
                ps.setLong(2, Micros.of(clock.instant()));
                ps.setString(3, gateway);
                ps.setString(4, state.channelId().hex());
                ps.executeUpdate();
            }
            return null;
        });
    }

    @Override
    public Contract bind(ChannelId channelId, Contract contract) {
        return ledger.tx("bind channel contract", c -> {
            // Bind-if-unbound and the read are one transaction: of two racing binds, one wins and both return it.
            try (PreparedStatement ps = c.prepareStatement("UPDATE channels SET contract_address = ?, payout_address = ?, "
                    + "updated_at_micros = ? WHERE gateway_id = ? AND channel_id = ? AND contract_address IS NULL")) {
                ps.setString(1, contract.address());
                ps.setString(2, contract.payoutAddress());
                ps.setLong(3, Micros.of(clock.instant()));
                ps.setString(4, gateway);
                ps.setString(5, channelId.hex());
                ps.executeUpdate();
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT contract_address, payout_address FROM channels WHERE gateway_id = ? AND channel_id = ?")) {
                ps.setString(1, gateway);
                ps.setString(2, channelId.hex());
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        throw new IllegalStateException("no open channel " + channelId + " in the journal");
                    }
                    return new Contract(rs.getString(1), rs.getString(2));
                }
            }
        });
    }

    private static final String ENTRY_COLUMNS =
            "channel_id, last_seqno, last_sent_nanoton, payee_state_boc, contract_address, payout_address";

    private Optional<Entry> find(Connection c, PaymentPublicKey payeeKey) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + ENTRY_COLUMNS
                + " FROM channels WHERE gateway_id = ? AND current_payee_key = ?")) {
            ps.setString(1, gateway);
            ps.setString(2, payeeKey.hex());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(entry(c, rs, payeeKey)) : Optional.empty();
            }
        }
    }

    /** The row at {@code rs}, read as {@link #ENTRY_COLUMNS}, with the fees the ledger bills on its channel. */
    private static Entry entry(Connection c, ResultSet rs, PaymentPublicKey payeeKey) throws SQLException {
        String channelId = rs.getString(1);
        String payeeState = rs.getString(4);
        String contract = rs.getString(5);
        return new Entry(ChannelId.fromHex(channelId), payeeKey, new SemiChannelBody(rs.getLong(2), rs.getLong(3)),
                payeeState == null ? null : SignedSemiChannel.parse(HEX.parseHex(payeeState)),
                Settlements.workerFeesBilled(c, channelId),
                contract == null ? null : new Contract(contract, rs.getString(6)));
    }

    private Optional<PaymentKeyPair> storedKey(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT seed_hex FROM payer_keys WHERE gateway_id = ?")) {
            ps.setString(1, gateway);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(PaymentKeyPair.fromSeed(HEX.parseHex(rs.getString(1)))) : Optional.empty();
            }
        }
    }
}
