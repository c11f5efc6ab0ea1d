package org.cocoonjvm.billing.chain;

import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.cell.CellSlice;

import java.math.BigInteger;
import java.time.Duration;
import java.util.Optional;

/**
 * Everything {@code get_channel_data} says about a deployed channel, read by a party that did not
 * deploy it: the payee checks it before it extends credit, since the address alone proves
 * nothing about who can sign, who is paid, or how much is behind it, and watches it afterwards
 * for an uncooperative close it did not start.
 *
 * @param quarantined the states an uncooperative close submitted, while one runs
 */
public record ChannelData(
        ChannelStatus status,
        BigInteger balanceA,
        BigInteger balanceB,
        PaymentPublicKey keyA,
        PaymentPublicKey keyB,
        ChannelId channelId,
        long committedSeqnoA,
        long committedSeqnoB,
        Address addressA,
        Address addressB,
        BigInteger excessFee,
        Duration quarantine,
        Duration conditionalClose,
        Optional<QuarantinedState> quarantined) {

    /**
     * @throws ChainException {@code channel_unreadable} when the account holds no channel (not
     *     deployed, or another contract)
     */
    public static ChannelData read(ChainClient chain, Address channel) {
        ChainClient.GetMethodResult r = chain.runGetMethod(channel, "get_channel_data");
        if (r.exitCode() != 0) {
            throw new ChainException(
                    "channel_unreadable",
                    "get_channel_data on " + channel.toBounceable() + ": exit " + r.exitCode());
        }
        return new ChannelData(
                ChannelStatus.of(r.num(0).intValueExact()),
                r.tupleNum(1, 0),
                r.tupleNum(1, 1),
                PaymentPublicKey.of(uint(r.tupleNum(2, 0), 32)),
                PaymentPublicKey.of(uint(r.tupleNum(2, 1), 32)),
                ChannelId.fromBytes(uint(r.num(3), ChannelId.BYTES)),
                r.tupleNum(5, 0).longValueExact(),
                r.tupleNum(5, 1).longValueExact(),
                address(r.tupleCell(7, 1)),
                address(r.tupleCell(7, 2)),
                r.tupleNum(7, 0),
                Duration.ofSeconds(r.tupleNum(4, 0).longValueExact()),
                Duration.ofSeconds(r.tupleNum(4, 2).longValueExact()),
                r.isNull(6) ? Optional.empty() : Optional.of(QuarantinedState.parse(r.cell(6))));
    }

    /**
     * The terms the contract was deployed with, as far as the payee needs them to act on it. A
     * handle built from them derives the contract's address from its code and data, which {@link
     * OnChainChannel#at} compares with where the data was read.
     */
    public ChannelTerms terms() {
        return new ChannelTerms(channelId.toBigInteger(), addressA, addressB, keyA.toBytes(), keyB.toBytes(),
                excessFee, quarantine, conditionalClose);
    }

    /**
     * What a payee requires before it serves on credit: the channel is open, is {@code id}, is
     * signed for by {@code payer} and {@code payee}, and pays out to {@code payout}.
     *
     * @return the payer's deposit on chain: the most this channel can ever pay the payee
     * @throws ChainException {@code channel_not_open} or {@code channel_mismatch}
     */
    public long requireOpenFor(
            ChannelId id, PaymentPublicKey payer, PaymentPublicKey payee, Address payout) {
        if (status != ChannelStatus.OPEN) {
            throw new ChainException("channel_not_open", "channel " + id + " is " + status);
        }
        mismatch("channel id", channelId, id);
        mismatch("payer key", keyA, payer);
        mismatch("payee key", keyB, payee);
        mismatch("payout address", addressB.toRaw(), payout.toRaw());
        return balanceA.longValueExact();
    }

    private static void mismatch(String what, Object onChain, Object expected) {
        if (!onChain.equals(expected)) {
            throw new ChainException(
                    "channel_mismatch",
                    "the channel's " + what + " on chain is " + onChain + ", expected " + expected);
        }
    }

    /** A non-negative integer as exactly {@code bytes} big-endian bytes. */
    static byte[] uint(BigInteger value, int bytes) {
        byte[] raw = value.toByteArray();
        if (value.signum() < 0 || raw.length > bytes + 1 || (raw.length == bytes + 1 && raw[0] != 0)) {
            throw new ChainException("bad_stack", value + " does not fit " + bytes + " bytes");
        }
        byte[] out = new byte[bytes];
        int n = Math.min(raw.length, bytes);
        System.arraycopy(raw, raw.length - n, out, bytes - n, n);
        return out;
    }

    private static Address address(Cell slice) {
        return CellSlice.beginParse(slice).loadAddress();
    }
}
