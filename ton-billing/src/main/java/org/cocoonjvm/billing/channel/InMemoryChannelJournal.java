package org.cocoonjvm.billing.channel;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * A {@link ChannelJournal} in memory: correct within one process, lost on restart. For tests and
 * demos; the gateway's durable one is the ledger's {@code JdbcChannelJournal}. Synchronized: calls
 * are rare next to the states, and a replace touches two channels at once.
 */
public final class InMemoryChannelJournal implements ChannelJournal {
    private final Map<PaymentPublicKey, ChannelId> current = new HashMap<>();
    /** Every channel not closed, oldest first. */
    private final Map<ChannelId, Entry> open = new LinkedHashMap<>();
    private final Map<ChannelId, Contract> contracts = new HashMap<>();
    private final Map<ChannelId, Entry> closed = new HashMap<>();
    private PaymentKeyPair key;

    @Override
    public synchronized PaymentKeyPair payerKey(Supplier<PaymentKeyPair> generate) {
        if (key == null) {
            key = generate.get();
        }
        return key;
    }

    @Override
    public synchronized Entry open(PaymentPublicKey payeeKey, Supplier<ChannelId> newId) {
        ChannelId id = current.computeIfAbsent(payeeKey, k -> {
            ChannelId fresh = newId.get();
            open.put(fresh, new Entry(fresh, k, SemiChannelBody.INITIAL, null, 0, null));
            return fresh;
        });
        return withContract(open.get(id));
    }

    @Override
    public synchronized Entry replace(PaymentPublicKey payeeKey, ChannelId retiring, Supplier<ChannelId> newId) {
        Entry old = open.get(retiring);
        if (old == null || !old.payeeKey().equals(payeeKey)) {
            throw new IllegalStateException("no open channel " + retiring + " of " + payeeKey + " in the journal");
        }
        if (retiring.equals(current.get(payeeKey))) {
            current.remove(payeeKey);
        }
        return open(payeeKey, newId);
    }

    @Override
    public synchronized List<Entry> openChannels() {
        return open.values().stream().map(this::withContract).toList();
    }

    /** Contracts are bound apart from the entries, which the states replace. */
    private Entry withContract(Entry entry) {
        return new Entry(entry.channelId(), entry.payeeKey(), entry.last(), entry.payeeState(), 0,
                contracts.get(entry.channelId()));
    }

    @Override
    public synchronized void signed(SignedSemiChannel state) {
        Entry entry = open.get(state.channelId());
        if (entry == null) {
            throw new IllegalStateException("no channel " + state.channelId() + " in the journal");
        }
        SemiChannelBody next = state.state().body();
        if (next.seqno() <= entry.last().seqno() || next.sentNanoton() < entry.last().sentNanoton()) {
            throw new IllegalStateException("state " + next + " does not extend the recorded " + entry.last()
                    + " on channel " + state.channelId());
        }
        open.put(state.channelId(), new Entry(state.channelId(), entry.payeeKey(), next, entry.payeeState(), 0, null));
    }

    @Override
    public synchronized void closed(PaymentPublicKey payeeKey, ChannelId id) {
        Entry entry = open.get(id);
        if (entry != null && entry.payeeKey().equals(payeeKey)) {
            closed.put(id, withContract(open.remove(id)));
            current.remove(payeeKey, id);
        }
    }

    @Override
    public synchronized Optional<Entry> closedChannel(PaymentPublicKey payeeKey, ChannelId id) {
        return Optional.ofNullable(closed.get(id)).filter(entry -> entry.payeeKey().equals(payeeKey));
    }

    @Override
    public synchronized Map<PaymentPublicKey, ClosedTotals> closedTotals() {
        Map<PaymentPublicKey, ClosedTotals> totals = new HashMap<>();
        closed.values().forEach(entry -> totals.compute(entry.payeeKey(),
                (key, sum) -> (sum == null ? ClosedTotals.NONE : sum).plus(entry.last().sentNanoton())));
        return totals;
    }

    @Override
    public synchronized void payeeState(SignedSemiChannel state) {
        open.computeIfPresent(state.channelId(), (id, entry) -> new Entry(id, entry.payeeKey(), entry.last(), state, 0, null));
    }

    @Override
    public synchronized Contract bind(ChannelId channelId, Contract contract) {
        if (!open.containsKey(channelId)) {
            throw new IllegalStateException("no open channel " + channelId + " in the journal");
        }
        return contracts.computeIfAbsent(channelId, id -> contract);
    }
}
