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
 *
 * @param counterparty the other party's body as the signer last saw it, or null to omit it. In a
 *                     one-way channel the payee never sends, so the payer omits it.
 */
public record SemiChannelState(ChannelId channelId, SemiChannelBody body, SemiChannelBody counterparty) {
    /** "ChSt": the tag that starts every signed semi-channel, so a signature cannot be reused for a message. */
    public static final long TAG = 0x43685374L;

    public SemiChannelState {
        if (channelId == null || body == null) {
            throw new IllegalArgumentException("a semi-channel state needs a channel id and a body");
        }
    }

    /** The {@code SemiChannel} cell; its representation hash is what the owner signs. */
    public Cell toCell() {
        return CellBuilder.beginCell()
                .storeUint(TAG, 32)
                .storeUint(channelId.toBigInteger(), 128)
                .storeCell(bodyCell(body))
                .storeRefMaybe(counterparty == null ? null : bodyCell(counterparty))
                .endCell();
    }

    private static Cell bodyCell(SemiChannelBody b) {
        return CellBuilder.beginCell()
                .storeUint(BigInteger.valueOf(b.seqno()), 64)
                .storeCoins(BigInteger.valueOf(b.sentNanoton()))
                .storeBit(false)  // conditionals: empty HashmapE
                .endCell();
    }
}
