package org.cocoonjvm.billing.channel;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * A {@link ChannelJournal} in memory: correct within one process, lost on restart. For tests and
 * demos; the gateway's durable one is the ledger's {@code JdbcChannelJournal}.
 */
public final class InMemoryChannelJournal implements ChannelJournal {
    private final Map<PaymentPublicKey, ChannelId> byPayee = new ConcurrentHashMap<>();
    private final Map<ChannelId, Entry> entries = new ConcurrentHashMap<>();
    private final Map<ChannelId, Contract> contracts = new ConcurrentHashMap<>();
    private PaymentKeyPair key;

    @Override
    public synchronized PaymentKeyPair payerKey(Supplier<PaymentKeyPair> generate) {
        if (key == null) {
            key = generate.get();
        }
        return key;
    }

    @Override
    public Entry open(PaymentPublicKey payeeKey, Supplier<ChannelId> newId) {
        ChannelId id = byPayee.computeIfAbsent(payeeKey, k -> {
            ChannelId fresh = newId.get();
            entries.put(fresh, new Entry(fresh, k, SemiChannelBody.INITIAL, null, 0, null));
            return fresh;
        });
        return withContract(entries.get(id));
    }

    @Override
    public List<Entry> openChannels() {
        return byPayee.values().stream().map(id -> withContract(entries.get(id))).toList();
    }

    /** Contracts are bound apart from the entries, which the states replace. */
    private Entry withContract(Entry entry) {
        return new Entry(entry.channelId(), entry.payeeKey(), entry.last(), entry.payeeState(), 0,
                contracts.get(entry.channelId()));
    }

    @Override
    public void signed(SignedSemiChannel state) {
        entries.compute(state.channelId(), (id, entry) -> {
            if (entry == null) {
                throw new IllegalStateException("no channel " + id + " in the journal");
            }
            SemiChannelBody next = state.state().body();
            if (next.seqno() <= entry.last().seqno() || next.sentNanoton() < entry.last().sentNanoton()) {
                throw new IllegalStateException("state " + next + " does not extend the recorded " + entry.last()
                        + " on channel " + id);
            }
            return new Entry(id, entry.payeeKey(), next, entry.payeeState(), 0, null);
        });
    }

    @Override
    public void closed(PaymentPublicKey payeeKey, ChannelId closed) {
        byPayee.remove(payeeKey, closed);
    }

    @Override
    public void payeeState(SignedSemiChannel state) {
        entries.computeIfPresent(state.channelId(),
                (id, entry) -> new Entry(id, entry.payeeKey(), entry.last(), state, 0, null));
    }

    @Override
    public Contract bind(ChannelId channelId, Contract contract) {
        if (!byPayee.containsValue(channelId)) {
            throw new IllegalStateException("no open channel " + channelId + " in the journal");
        }
        return contracts.computeIfAbsent(channelId, id -> contract);
    }
}
