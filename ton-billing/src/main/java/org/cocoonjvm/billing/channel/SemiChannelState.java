package org.cocoonjvm.billing.channel;

import java.math.BigInteger;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.cell.CellBuilder;

/**
 * The official contract's {@code SemiChannel}, what one party signs:
 * <pre>
 * semichannel_state#43685374 channel_id:uint128 data:SemiChannelBody
 *   counterparty_data:(Maybe ^SemiChannelBody) = SemiChannel;
 * sc_body#_ seqno:uint64 sent:Coins conditionals:(HashmapE 32 ConditionalPayment) = SemiChannelBody;
 * </pre>
 * Channels here are one-way (the worker never pays the gateway), so {@code counterparty_data} is
 * always absent and {@code conditionals} always empty: the cell has no references.
 */
public record SemiChannelState(ChannelId channelId, SemiChannelBody body) {
    /** "ChSt": the tag that starts every signed semi-channel, so a signature cannot be reused for a message. */
    public static final long TAG = 0x43685374L;

    public SemiChannelState {
        if (channelId == null || body == null) {
            throw new IllegalArgumentException("a semi-channel state needs a channel id and a body");
        }
    }

    /** The {@code SemiChannel} cell, built with ton4j; its representation hash is what the owner signs. */
    public Cell toCell() {
        return CellBuilder.beginCell()
                .storeUint(TAG, 32)
                .storeUint(channelId.toBigInteger(), 128)
                .storeUint(BigInteger.valueOf(body.seqno()), 64)
                .storeCoins(BigInteger.valueOf(body.sentNanoton()))
                .storeBit(false)   // conditionals: empty HashmapE
                .storeBit(false)   // counterparty_data: nothing
                .endCell();
    }
}
