package org.cocoonjvm.billing.channel;

/**
 * What the payee of a one-way channel checks every state against: the channel, the payer's key,
 * and the most the payer's deposit can pay out.
 *
 * @param depositCapNanoton the largest cumulative {@code sent} accepted: the deposit less the
 *                          misbehaviour fine and any reserve (pitfall 3: a larger amount can
 *                          freeze the channel on an uncooperative close)
 */
public record ChannelTerms(ChannelId channelId, PaymentPublicKey payerKey, long depositCapNanoton) {
    public ChannelTerms {
        if (channelId == null || payerKey == null) {
            throw new IllegalArgumentException("channel terms need a channel id and the payer's key");
        }
        if (depositCapNanoton < 0) {
            throw new IllegalArgumentException("the deposit cap must be >= 0 nanoTON, got " + depositCapNanoton);
        }
    }
}
