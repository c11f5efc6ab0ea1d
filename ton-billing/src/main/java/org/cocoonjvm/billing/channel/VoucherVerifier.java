package org.cocoonjvm.billing.channel;

import org.cocoonjvm.billing.channel.VoucherException.Reason;

/**
 * The payee's checks on a new state from the payer, as the contract's README asks: signed by the
 * payer for this channel, seqno strictly up, cumulative {@code sent} not down and within the
 * deposit. Cheap checks run before the signature, so garbage costs no curve arithmetic.
 */
public final class VoucherVerifier {
    private VoucherVerifier() {
    }

    /**
     * @param previous the last state accepted on this channel, or null for the first one
     * @return the new state, to be stored before it is relied on
     * @throws VoucherException with the first rule the state breaks
     */
    public static SignedSemiChannel accept(ChannelTerms terms, SignedSemiChannel previous, byte[] boc) {
        return accept(terms, previous, SignedSemiChannel.parse(boc));
    }

    /** As {@link #accept(ChannelTerms, SignedSemiChannel, byte[])}, for an already parsed state. */
    public static SignedSemiChannel accept(ChannelTerms terms, SignedSemiChannel previous, SignedSemiChannel next) {
        if (!next.channelId().equals(terms.channelId())) {
            throw new VoucherException(Reason.WRONG_CHANNEL, "state for channel " + next.channelId()
                    + ", expected " + terms.channelId());
        }
        if (previous != null && next.seqno() <= previous.seqno()) {
            throw new VoucherException(Reason.SEQNO_NOT_INCREASING, "seqno " + next.seqno()
                    + " is not above the accepted " + previous.seqno());
        }
        if (previous != null && next.sentNanoton() < previous.sentNanoton()) {
            throw new VoucherException(Reason.SENT_DECREASING, "sent " + next.sentNanoton()
                    + " nanoTON is below the accepted " + previous.sentNanoton());
        }
        if (next.sentNanoton() > terms.depositCapNanoton()) {
            throw new VoucherException(Reason.ABOVE_DEPOSIT, "sent " + next.sentNanoton()
                    + " nanoTON exceeds the channel's cap of " + terms.depositCapNanoton());
        }
        if (!next.signedBy(terms.payerKey())) {
            throw new VoucherException(Reason.BAD_SIGNATURE, "seqno " + next.seqno()
                    + " is not signed by " + terms.payerKey());
        }
        return next;
    }
}
