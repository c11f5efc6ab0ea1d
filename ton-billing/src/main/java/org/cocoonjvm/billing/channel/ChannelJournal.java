package org.cocoonjvm.billing.channel;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The payer's durable record of its channels: its key, which channel belongs to which payee key,
 * and the last state signed on each. A state is recorded before it is sent, so a restarted payer
 * never signs a lower amount or reuses a seqno. Calls may block (a database): keep them off event
 * loops.
 */
public interface ChannelJournal {
    /**
     * @param channelId  the channel
     * @param payeeKey   the payee's key, which identifies it across reconnects
     * @param last       the last state the payer signed ({@link SemiChannelBody#INITIAL} before any)
     * @param payeeState the payee's own signed initial state, once it sent one; null before
     * @param feesBilledNanoton the worker fees that the payer's ledger bills its clients on this
     *                   channel, when the journal sits beside one (else 0): a payer restarted
     *                   after a crash owes at least this, and may not yet have signed all of it
     * @param contract   the contract the channel is bound to ({@link #bind}); null while unbound
     *                   (off chain, or not yet deployed)
     */
    record Entry(ChannelId channelId, PaymentPublicKey payeeKey, SemiChannelBody last, SignedSemiChannel payeeState,
                 long feesBilledNanoton, Contract contract) {}

    /**
     * The payer's key: the stored one, or {@code generate}'s, stored now. A restarted payer must
     * sign with the key its channels were opened with, so the key is kept with the journal.
     */
    PaymentKeyPair payerKey(Supplier<PaymentKeyPair> generate);

    /**
     * The current channel of {@code payeeKey}, opened with {@code newId} when it has none yet. A
     * payee has one current channel; those it {@link #replace replaced} stay open, not current,
     * until they close.
     */
    Entry open(PaymentPublicKey payeeKey, Supplier<ChannelId> newId);

    /**
     * Opens {@code payeeKey}'s next channel with {@code newId} while {@code retiring}, its current
     * one, stays open for its close: {@link #open} returns the new one from now on. A payee that
     * keeps serving while its channel closes is paid on the next one meanwhile. When {@code
     * retiring} was replaced already (a retry after a crash), returns the current channel.
     *
     * @throws IllegalStateException if the journal has no open channel {@code retiring} of {@code payeeKey}
     */
    Entry replace(PaymentPublicKey payeeKey, ChannelId retiring, Supplier<ChannelId> newId);

    /**
     * Every channel not yet closed, current or replaced, as {@link #open} would return it, oldest
     * first: a restarted payer shows what it owes on each before their payees come back.
     */
    List<Entry> openChannels();

    /**
     * Records a state the payer signed, before it is sent.
     *
     * @throws IllegalStateException if it does not extend the last recorded state (seqno up, sent not down)
     */
    void signed(SignedSemiChannel state);

    /**
     * The channel {@code closed} settled on chain: when it was {@code payeeKey}'s current one, the
     * next {@link #open} gets a new channel, whose states count from zero again. Its old entry is
     * kept for the record.
     */
    void closed(PaymentPublicKey payeeKey, ChannelId closed);

    /**
     * A channel of {@code payeeKey} recorded {@link #closed}, as it stood then (its last state and
     * contract); empty for a channel that is open, another payee's, or unknown. A payee
     * that never got the close's signature (the connection broke as it was sent) asks for it again.
     */
    Optional<Entry> closedChannel(PaymentPublicKey payeeKey, ChannelId id);

    /**
     * The channels a payee's key had that were recorded {@link #closed}.
     *
     * @param channels    how many
     * @param sentNanoton the sum of their last states: what their closes paid the payee
     */
    record ClosedTotals(long channels, long sentNanoton) {
        public static final ClosedTotals NONE = new ClosedTotals(0, 0);

        /** These and one more closed channel whose last state sent {@code sent}. */
        public ClosedTotals plus(long sent) {
            return new ClosedTotals(channels + 1, sentNanoton + sent);
        }
    }

    /**
     * Per payee key with any, its closed channels' totals: a payee paid over many channels in turn
     * (one closed at its threshold, the next opened) is reconciled with what it counts over its
     * life, which the open channels alone no longer show.
     */
    Map<PaymentPublicKey, ClosedTotals> closedTotals();

    /** Records the payee's signed initial state (pitfall 2: needed for a close without the payee). */
    void payeeState(SignedSemiChannel state);

    /**
     * The contract a channel is deployed at, and the payee's payout address among the terms that
     * fix that address. Addresses in raw form ({@code 0:<hex>}).
     */
    record Contract(String address, String payoutAddress) {}

    /**
     * Binds channel {@code channelId} to {@code contract}, unless it is bound already; returns the
     * contract it is bound to, for the channel's life. A state names its channel id and not the
     * contract, so two contracts under one id would each pay every state: the payer deploys only
     * the contract returned, and refuses terms that derive another. Called before deploying, so a
     * crash between the two leaves the binding, not a contract the journal does not name.
     *
     * @throws IllegalStateException if the journal has no open channel {@code channelId}
     */
    Contract bind(ChannelId channelId, Contract contract);
}
