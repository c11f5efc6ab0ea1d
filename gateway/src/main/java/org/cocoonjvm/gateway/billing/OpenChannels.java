package org.cocoonjvm.gateway.billing;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link ChannelBilling}'s table of channels: the open ones by id, and per worker key the totals of
 * those the journal records closed; the most each may pay ({@link #cap}, {@link #capped}); and what
 * {@code /admin/workers} and {@code /metrics} read of them (views, lifetimes, the absent and
 * deposit figures of {@link PaymentStats}).
 *
 * <p>Plain state, apart from the verticle so that the table has one owner and the verticle keeps
 * only its hops: every method runs on ChannelBilling's context (but {@link #closedAtStart}, on
 * the worker thread of its start, before the context reads anything), without locks.
 */
final class OpenChannels {
    /** ChannelBilling's logger: these lines were its own, and operators' log filters name it. */
    private static final Logger log = LoggerFactory.getLogger(ChannelBilling.class);
    /** Whether channels are contracts on chain (a {@link ChannelOnChain} given). */
    private final boolean onChain;
    /** The deposit cap set now: the most an off-chain channel, or one whose contract was not read yet, pays. */
    private final long depositCapNanoton;
    private final PaymentStats stats;
    private final Map<ChannelId, WorkerChannel> channels = new HashMap<>();
    /** Per worker key, the channels the journal records closed. */
    private final Map<PaymentPublicKey, ChannelJournal.ClosedTotals> closedTotals = new HashMap<>();

    OpenChannels(boolean onChain, long depositCapNanoton, PaymentStats stats) {
        this.onChain = onChain;
        this.depositCapNanoton = depositCapNanoton;
        this.stats = stats;
    }

    /** The journal's closed channels, read by the verticle's start on a worker thread. */
    void closedAtStart(Map<PaymentPublicKey, ChannelJournal.ClosedTotals> closed) {
        closedTotals.putAll(closed);
    }

    void put(ChannelId id, WorkerChannel channel) {
        channels.put(id, channel);
    }

    /** The open channel {@code id}; null when there is none. */
    WorkerChannel get(ChannelId id) {
        return channels.get(id);
    }

    /** Every open channel, live: what a round collects and a session detaches from. */
    Collection<WorkerChannel> all() {
        return channels.values();
    }

    /** {@link ChannelBilling#channelToAttach}: the channel {@code entry} names, made again by {@code channelOf} unless a worker attached to it. */
    WorkerChannel toAttach(ChannelJournal.Entry entry, Function<ChannelJournal.Entry, WorkerChannel> channelOf) {
        return channels.compute(entry.channelId(),
                (id, known) -> known == null || known.workerId() == null ? channelOf.apply(entry) : known);
    }

    /** {@code channel} leaves the open channels; false when it had left already. */
    boolean remove(WorkerChannel channel) {
        return channels.remove(channel.id(), channel);
    }

    /** The journal recorded {@code channel} closed: its last state joins its worker key's closed totals. */
    void closed(WorkerChannel channel) {
        closedTotals.put(channel.workerKey(), closedTotals.getOrDefault(channel.workerKey(), ChannelJournal.ClosedTotals.NONE)
                .plus(channel.payer().last().sentNanoton()));
    }

    /**
     * The most {@code channel} pays: on chain its contract's deposit, whatever the cap set now (a
     * channel funded under another setting holds what it held); the cap set now off chain, and for
     * an on-chain channel whose contract this process has not read yet (a view's estimate).
     */
    long cap(WorkerChannel channel) {
        return channel.deposit().orElse(depositCapNanoton);
    }

    /**
     * What a channel may pay of {@code owed}; logs once per channel when its fees go past its cap.
     * An on-chain channel pays nothing past its last state until its contract is read: its deposit
     * may be less than the cap set now.
     */
    long capped(WorkerChannel channel, long owed) {
        if (onChain && channel.deposit().isEmpty()) {
            return Math.min(owed, channel.signed().sentNanoton());
        }
        long cap = cap(channel);
        if (channel.firstPastCap(owed, cap)) {
            log.error("channel {} owes {} nanoTON, above its cap of {}: the worker is paid up to the cap only; "
                    + "close and reopen the channel", channel.id(), owed, cap);
        }
        return Math.min(owed, cap);
    }

    /** {@link ChannelBilling#lifetimes()}: per worker key, every channel opened for it, closed ones included. */
    Map<PaymentPublicKey, WorkerLifetime> lifetimes() {
        Map<PaymentPublicKey, WorkerLifetime> all = new HashMap<>();
        closedTotals.forEach((workerKey, closed) -> all.put(workerKey, WorkerLifetime.closed(closed)));
        channels.values().forEach(c -> all.put(c.workerKey(), all.getOrDefault(c.workerKey(), WorkerLifetime.NONE)
                .plusOpen(c.signed().sentNanoton())));
        return all;
    }

    /** {@link ChannelBilling#absentViews()}. */
    List<WorkerChannel.View> absentViews() {
        return views(this::isAbsent);
    }

    /** {@link ChannelBilling#closingViews()}. */
    List<WorkerChannel.View> closingViews() {
        return views(c -> c.closing() && c.attached() && !c.closed());
    }

    private List<WorkerChannel.View> views(Predicate<WorkerChannel> which) {
        return channels.values().stream().filter(which).map(c -> c.view(cap(c))).toList();
    }

    /**
     * No session, not closed, and something to wait for: on chain, a channel that never opened
     * (its open refused, e.g. for an empty wallet) holds no deposit and owes nothing, and listing
     * it as absent sent operators looking for money that was never there (audit K, K-9).
     */
    private boolean isAbsent(WorkerChannel c) {
        return !c.attached() && !c.closed()
                && (!onChain || c.onChain() != null || c.signed().seqno() > 0 || c.durableFees() > 0);
    }

    /**
     * The absent workers' unpaid sum and count, after a round. Only theirs: an attached channel's
     * view reads every meter in flight, and rounds come every few milliseconds under load.
     */
    void tally() {
        long absent = 0;
        long absentCount = 0;
        long deposits = 0;
        for (WorkerChannel c : channels.values()) {
            if (c.closed()) {
                continue;
            }
            if (isAbsent(c)) {
                absent += c.view(cap(c)).unpaidNanoton();
                absentCount++;
            }
            // A state is sent only once its contract is open, so a channel holding one was funded;
            // one bound without a state may have failed its open before the deploy.
            if (c.onChain() != null || c.contractAddress() != null && c.signed().seqno() > 0) {
                deposits += cap(c);
            }
        }
        stats.tallied(absent, absentCount, deposits);
    }
}
