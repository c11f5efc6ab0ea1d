package org.cocoonjvm.billing.channel;

import org.cocoonjvm.billing.channel.VoucherException.Reason;

/**
 * The payer's side of one one-way channel: turns a new cumulative amount into the next signed
 * state. Not thread-safe; it belongs to the one owner of the channel's states.
 */
public final class ChannelPayer {
    private ChannelTerms terms;
    private final PaymentKeyPair key;
    private SemiChannelBody last;

    /**
     * @param last the last state signed on this channel (from the payer's journal), or
     *             {@link SemiChannelBody#INITIAL} for a new channel
     */
    public ChannelPayer(ChannelTerms terms, PaymentKeyPair key, SemiChannelBody last) {
        if (!key.publicKey().equals(terms.payerKey())) {
            throw new IllegalArgumentException("the key " + key.publicKey() + " is not the channel's payer key "
                    + terms.payerKey());
        }
        this.terms = terms;
        this.key = key;
        this.last = last;
    }

    public ChannelTerms terms() {
        return terms;
    }

    /**
     * The channel's cap is its contract's deposit, read when it opens: a payer made before that
     * (from its journal, at a restart) carried the payer's setting of the time, which may differ
     * from what the contract was funded with.
     */
    public void capAt(long depositNanoton) {
        terms = new ChannelTerms(terms.channelId(), terms.payerKey(), depositNanoton);
    }

    public SemiChannelBody last() {
        return last;
    }

    /**
     * The last state, signed again: Ed25519 signatures are deterministic, so these are the same
     * bytes the payee got, or should have got. Null before the first state.
     */
    public SignedSemiChannel lastSigned() {
        return last.seqno() == 0 ? null : key.sign(new SemiChannelState(terms.channelId(), last));
    }

    /**
     * Signs the next state: seqno up by one, {@code sent} = {@code cumulativeNanoton}.
     *
     * @throws VoucherException SENT_DECREASING or ABOVE_DEPOSIT; nothing is signed then
     * @throws IllegalStateException when the channel's seqnos are used up: close and reopen it
     */
    public SignedSemiChannel pay(long cumulativeNanoton) {
        if (cumulativeNanoton < last.sentNanoton()) {
            throw new VoucherException(Reason.SENT_DECREASING, "sent " + cumulativeNanoton
                    + " nanoTON is below the already signed " + last.sentNanoton());
        }
        if (cumulativeNanoton > terms.depositCapNanoton()) {
            throw new VoucherException(Reason.ABOVE_DEPOSIT, "sent " + cumulativeNanoton
                    + " nanoTON exceeds the channel's cap of " + terms.depositCapNanoton());
        }
        if (last.seqno() + 1 >= SemiChannelBody.SEQNO_LIMIT) {
            throw new IllegalStateException("channel " + terms.channelId() + " has used all its seqnos");
        }
        SemiChannelBody next = new SemiChannelBody(last.seqno() + 1, cumulativeNanoton);
        SignedSemiChannel signed = key.sign(new SemiChannelState(terms.channelId(), next));
        last = next;
        return signed;
    }
}
