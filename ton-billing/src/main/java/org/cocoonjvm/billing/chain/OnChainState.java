package org.cocoonjvm.billing.chain;

import java.math.BigInteger;

/**
 * The channel contract's storage as {@code get_channel_data} reports it.
 *
 * @param committedSeqnoA the contract refuses any close or commit whose seqno_A is not above this
 * @param quarantined an uncooperative close is in progress
 */
public record OnChainState(
        ChannelStatus status,
        BigInteger balanceA,
        BigInteger balanceB,
        long committedSeqnoA,
        long committedSeqnoB,
        boolean quarantined) {}
