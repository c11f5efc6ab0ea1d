package org.cocoonjvm.billing.channel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.zip.CRC32C;

/**
 * A {@code SignedSemiChannel} exactly as the contract takes it:
 * {@code signed_schs#_ signature:bits512 state:SemiChannel}, the signature followed inline by the
 * state and made over the state's cell hash (the contract's {@code slice_hash} of the remainder).
 * Immutable; {@link #boc()} is the serialized cell any TON library can parse.
 *
 * <p>The signed cell has no references (see {@link SemiChannelState}), so its BOC is one cell
 * with a CRC32C, written and read here directly: ton4j's general BOC code costs more than the
 * signature itself. {@code SignedSemiChannelGoldenTest} holds the output byte-identical to ton4j's
 * {@code PaymentChannel.createSignedSemiChannelState}, and ton4j parses it back.
 */
public final class SignedSemiChannel {
    public static final int SIGNATURE_BYTES = 64;
    private static final int MAGIC = 0xb5ee9c72;
    /** has_idx 0, has_crc32c 1, has_cache_bits 0, flags 0, size_bytes 1. */
    private static final int FLAGS_WITH_CRC = 0x41;
    private static final int FLAGS_WITHOUT_CRC = 0x01;
    /** Bits of the signed cell before the variable-length amount: signature, tag, channel id, seqno, coins length. */
    private static final int FIXED_BITS = 512 + 32 + 128 + 64 + 4;

    private final SemiChannelState state;
    private final byte[] stateHash;
    private final byte[] signature;
    private final byte[] boc;

    private SignedSemiChannel(SemiChannelState state, byte[] stateHash, byte[] signature, byte[] boc) {
        this.state = state;
        this.stateHash = stateHash;
        this.signature = signature;
        this.boc = boc;
    }

    /** Wraps a signature made over {@code stateHash}, the cell hash of {@code state}. */
    static SignedSemiChannel of(SemiChannelState state, byte[] stateHash, byte[] signature) {
        return new SignedSemiChannel(state, stateHash, signature.clone(), encode(signature, state));
    }

    /**
     * Parses a BOC. Only the canonical encoding is accepted: one cell, no index, the amount in its
     * shortest form, no conditionals, no counterparty. So the bits the contract hashes are exactly
     * those of {@link SemiChannelState#toCell()}, whose hash {@link #signedBy} checks. The
     * signature is not checked here: that needs the key.
     *
     * @throws VoucherException {@link VoucherException.Reason#MALFORMED}
     */
    public static SignedSemiChannel parse(byte[] boc) {
        if (boc == null) {
            throw malformed("no BOC");
        }
        ByteBuffer in = ByteBuffer.wrap(boc);
        if (boc.length < 11 + 2 || in.getInt() != MAGIC) {
            throw malformed("not a BOC (" + boc.length + " bytes)");
        }
        int flags = in.get() & 0xff;
        boolean crc = flags == FLAGS_WITH_CRC;
        if (!crc && flags != FLAGS_WITHOUT_CRC) {
            throw malformed("BOC flags 0x" + Integer.toHexString(flags) + ": expected one cell without an index");
        }
        int offBytes = in.get() & 0xff;
        int cells = in.get() & 0xff;
        int roots = in.get() & 0xff;
        int absent = in.get() & 0xff;
        int size = in.get() & 0xff;
        int root = in.get() & 0xff;
        if (offBytes != 1 || cells != 1 || roots != 1 || absent != 0 || root != 0) {
            throw malformed("a signed state is one root cell, got " + cells + " cells and " + roots + " roots");
        }
        if (boc.length != 11 + size + (crc ? 4 : 0) || size < 2) {
            throw malformed("BOC of " + boc.length + " bytes does not match its cell size " + size);
        }
        if (crc) {
            CRC32C sum = new CRC32C();
            sum.update(boc, 0, boc.length - 4);
            if ((int) sum.getValue() != ByteBuffer.wrap(boc, boc.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt()) {
                throw malformed("CRC32C mismatch");
            }
        }
        int d1 = in.get() & 0xff;
        int d2 = in.get() & 0xff;
        if (d1 != 0) {
            throw malformed("the cell has references, a level or is exotic (d1 0x" + Integer.toHexString(d1)
                    + "); a one-way channel state has none");
        }
        byte[] data = new byte[size - 2];
        in.get(data);
        if (data.length != (d2 + 1) / 2) {
            throw malformed("cell data of " + data.length + " bytes, descriptor says " + (d2 + 1) / 2);
        }
        int bitLength = bitLength(data, d2);
        Bits bits = new Bits(data, bitLength);
        byte[] signature = bits.bytes(SIGNATURE_BYTES);
        long tag = bits.uint(32);
        if (tag != SemiChannelState.TAG) {
            throw malformed("tag 0x" + Long.toHexString(tag) + ", expected 0x" + Long.toHexString(SemiChannelState.TAG) + " (ChSt)");
        }
        ChannelId channelId = ChannelId.fromBytes(bits.bytes(ChannelId.BYTES));
        long seqno = bits.uint(64);
        int amountBytes = (int) bits.uint(4);
        if (amountBytes > 8 || (amountBytes == 8 && (bits.peekByte() & 0x80) != 0)) {
            throw malformed("sent does not fit in 63 bits");
        }
        long sent = bits.uint(8 * amountBytes);
        if (amountBytes != (64 - Long.numberOfLeadingZeros(sent) + 7) / 8) {
            throw malformed("sent " + sent + " is not in its shortest form");
        }
        if (bits.uint(1) != 0) {
            throw malformed("conditional payments are not supported");
        }
        if (bits.uint(1) != 0) {
            throw malformed("counterparty_data is set; a one-way channel state has none");
        }
        if (bits.remaining() != 0) {
            throw malformed(bits.remaining() + " bits after the state");
        }
        if (seqno < 0 || seqno >= SemiChannelBody.SEQNO_LIMIT) {
            throw malformed("seqno " + Long.toUnsignedString(seqno) + " is not below " + SemiChannelBody.SEQNO_LIMIT);
        }
        SemiChannelState state = new SemiChannelState(channelId, new SemiChannelBody(seqno, sent));
        return new SignedSemiChannel(state, remainderHash(data, bitLength), signature, boc.clone());
    }

    /**
     * The contract's {@code slice_hash} of what follows the signature: the representation hash of
     * a cell holding the bits after the first 512 and no references, i.e. SHA-256 of its
     * descriptors (d1 = 0, d2 = ⌊bits/8⌋ + ⌈bits/8⌉) and its data with the completion tag, which
     * is the signed cell's data from byte 64 on (the signature is 64 whole bytes). The canonical
     * form {@link #parse} insists on makes it {@link SemiChannelState#toCell()}'s hash, the one
     * {@link PaymentKeyPair#sign} signs. Building that cell with ton4j took longer than the rest
     * of the parse.
     */
    private static byte[] remainderHash(byte[] data, int signedBits) {
        int bits = signedBits - 8 * SIGNATURE_BYTES;
        MessageDigest sha256;
        try {
            sha256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
        sha256.update((byte) 0);
        sha256.update((byte) (bits / 8 + (bits + 7) / 8));
        sha256.update(data, SIGNATURE_BYTES, data.length - SIGNATURE_BYTES);
        return sha256.digest();
    }

    /** @throws VoucherException MALFORMED unless standard base64 of a valid BOC */
    public static SignedSemiChannel parseBase64(String base64) {
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(base64);
        } catch (IllegalArgumentException | NullPointerException e) {
            throw malformed("not base64");
        }
        return parse(bytes);
    }

    public SemiChannelState state() {
        return state;
    }

    public ChannelId channelId() {
        return state.channelId();
    }

    public long seqno() {
        return state.body().seqno();
    }

    public long sentNanoton() {
        return state.body().sentNanoton();
    }

    /** Whether the signature verifies with {@code key} over the state's cell hash. */
    public boolean signedBy(PaymentPublicKey key) {
        return key.verifies(signature, stateHash);
    }

    public byte[] signature() {
        return signature.clone();
    }

    public byte[] boc() {
        return boc.clone();
    }

    public String bocBase64() {
        return Base64.getEncoder().encodeToString(boc);
    }

    @Override
    public String toString() {
        return "SignedSemiChannel[" + state + "]";
    }

    /** The one-cell BOC, with CRC32C, of the signature followed by the state's fields. */
    private static byte[] encode(byte[] signature, SemiChannelState state) {
        long sent = state.body().sentNanoton();
        int amountBytes = (64 - Long.numberOfLeadingZeros(sent) + 7) / 8;
        int bitLength = FIXED_BITS + 8 * amountBytes + 2;
        int dataBytes = (bitLength + 7) / 8;
        byte[] data = new byte[dataBytes];
        int at = put(data, 0, signature);
        at = put(data, at, SemiChannelState.TAG, 32);
        at = put(data, at, state.channelId().high(), 64);
        at = put(data, at, state.channelId().low(), 64);
        at = put(data, at, state.body().seqno(), 64);
        at = put(data, at, amountBytes, 4);
        at = put(data, at, sent, 8 * amountBytes);
        at += 2;  // conditionals and counterparty_data: both absent, zero bits
        if (at % 8 != 0) {
            data[at / 8] |= (byte) (0x80 >>> (at % 8));  // completion tag of a partial last byte
        }
        int d2 = (bitLength / 8) + dataBytes;
        ByteBuffer out = ByteBuffer.allocate(11 + 2 + dataBytes + 4);
        out.putInt(MAGIC).put((byte) FLAGS_WITH_CRC).put((byte) 1).put((byte) 1).put((byte) 1).put((byte) 0)
                .put((byte) (2 + dataBytes)).put((byte) 0)
                .put((byte) 0).put((byte) d2).put(data);
        CRC32C sum = new CRC32C();
        sum.update(out.array(), 0, out.position());
        out.order(ByteOrder.LITTLE_ENDIAN).putInt((int) sum.getValue());
        return out.array();
    }

    private static int put(byte[] data, int at, byte[] bytes) {
        for (byte b : bytes) {
            at = put(data, at, b & 0xff, 8);
        }
        return at;
    }

    /** Writes the low {@code bits} bits of {@code value}, most significant first, at bit {@code at}. */
    private static int put(byte[] data, int at, long value, int bits) {
        for (int i = bits - 1; i >= 0; i--, at++) {
            if (((value >>> i) & 1) != 0) {
                data[at / 8] |= (byte) (0x80 >>> (at % 8));
            }
        }
        return at;
    }

    /** The cell's bit length: all data bits when d2 is even, else up to its completion tag. */
    private static int bitLength(byte[] data, int d2) {
        if (d2 % 2 == 0) {
            return data.length * 8;
        }
        int last = data[data.length - 1] & 0xff;
        if (last == 0) {
            throw malformed("the cell's last byte has no completion tag");
        }
        return data.length * 8 - 1 - Integer.numberOfTrailingZeros(last);
    }

    /** Reads big-endian bit fields from cell data. */
    private static final class Bits {
        private final byte[] data;
        private final int length;
        private int at;

        Bits(byte[] data, int length) {
            this.data = data;
            this.length = length;
        }

        long uint(int bits) {
            if (at + bits > length) {
                throw malformed("the cell ends " + (at + bits - length) + " bits early");
            }
            long value = 0;
            for (int i = 0; i < bits; i++, at++) {
                value = (value << 1) | ((data[at / 8] >>> (7 - at % 8)) & 1);
            }
            return value;
        }

        byte[] bytes(int n) {
            byte[] out = new byte[n];
            for (int i = 0; i < n; i++) {
                out[i] = (byte) uint(8);
            }
            return out;
        }

        int peekByte() {
            int saved = at;
            int b = at + 8 <= length ? (int) uint(8) : 0;
            at = saved;
            return b;
        }

        int remaining() {
            return length - at;
        }
    }

    private static VoucherException malformed(String message) {
        return new VoucherException(VoucherException.Reason.MALFORMED, message);
    }
}
