package org.cocoonjvm.billing.channel;

import java.math.BigInteger;
import java.util.Arrays;
import java.util.Base64;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.cell.CellBuilder;
import org.ton.ton4j.cell.CellSlice;

/**
 * A {@code SignedSemiChannel} exactly as the contract takes it:
 * {@code signed_schs#_ signature:bits512 state:SemiChannel}, the signature followed inline by the
 * state and made over the state's cell hash (the contract's {@code slice_hash} of the remainder).
 * Immutable; {@link #boc()} is the serialized cell any TON library can parse.
 */
public final class SignedSemiChannel {
    public static final int SIGNATURE_BYTES = 64;
    /** A BOC of one signed state is about 130 bytes; anything far larger is not one. */
    private static final int MAX_BOC_BYTES = 1024;

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

    /** Wraps a signature made over {@code stateCell}, the cell of {@code state}. */
    static SignedSemiChannel of(SemiChannelState state, Cell stateCell, byte[] signature) {
        Cell signed = signedCell(signature, stateCell);
        return new SignedSemiChannel(state, stateCell.hash(), signature.clone(), signed.toBoc());
    }

    /**
     * Parses a BOC. Only the canonical encoding of a state is accepted (the one {@link #boc()}
     * produces, up to BOC flags), so the hash that was signed is exactly the one recomputed here.
     * The signature is not checked: that needs the key, see {@link #signedBy}.
     *
     * @throws VoucherException {@link VoucherException.Reason#MALFORMED}
     */
    public static SignedSemiChannel parse(byte[] boc) {
        if (boc == null || boc.length == 0 || boc.length > MAX_BOC_BYTES) {
            throw malformed("expected a BOC of at most " + MAX_BOC_BYTES + " bytes, got "
                    + (boc == null ? "none" : boc.length));
        }
        Cell root;
        SemiChannelState state;
        byte[] signature;
        try {
            root = Cell.fromBoc(boc);
            CellSlice s = CellSlice.beginParse(root);
            signature = s.loadBytes(SIGNATURE_BYTES * 8);
            long tag = s.loadUint(32).longValueExact();
            if (tag != SemiChannelState.TAG) {
                throw malformed("tag 0x" + Long.toHexString(tag) + ", expected 0x" + Long.toHexString(SemiChannelState.TAG) + " (ChSt)");
            }
            ChannelId channelId = channelId(s.loadUint(128));
            SemiChannelBody body = body(s);
            Cell counterpartyCell = s.loadMaybeRefX();
            SemiChannelBody counterparty = null;
            if (counterpartyCell != null) {
                CellSlice c = CellSlice.beginParse(counterpartyCell);
                counterparty = body(c);
                c.endParse();
            }
            s.endParse();
            state = new SemiChannelState(channelId, body, counterparty);
        } catch (VoucherException e) {
            throw e;
        } catch (RuntimeException e) {
            throw malformed("not a SignedSemiChannel cell: " + e);
        } catch (Error e) {
            // ton4j reports garbled input ("Invalid boc", "not all bits read") as a plain
            // java.lang.Error; any subclass (OutOfMemoryError, ...) is a real error.
            if (e.getClass() != Error.class) {
                throw e;
            }
            throw malformed("not a SignedSemiChannel cell: " + e.getMessage());
        }
        Cell stateCell = state.toCell();
        if (!Arrays.equals(signedCell(signature, stateCell).hash(), root.hash())) {
            throw malformed("not the canonical encoding of " + state);
        }
        return new SignedSemiChannel(state, stateCell.hash(), signature, boc.clone());
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

    private static Cell signedCell(byte[] signature, Cell stateCell) {
        return CellBuilder.beginCell().storeBytes(signature).storeCell(stateCell).endCell();
    }

    private static SemiChannelBody body(CellSlice s) {
        BigInteger seqno = s.loadUint(64);
        BigInteger sent = s.loadCoins();
        if (s.loadBit()) {
            throw malformed("conditional payments are not supported");
        }
        if (seqno.compareTo(BigInteger.valueOf(SemiChannelBody.SEQNO_LIMIT)) >= 0) {
            throw malformed("seqno " + seqno + " is not below " + SemiChannelBody.SEQNO_LIMIT);
        }
        if (sent.bitLength() > 63) {
            throw malformed("sent " + sent + " nanoTON does not fit in 63 bits");
        }
        return new SemiChannelBody(seqno.longValueExact(), sent.longValueExact());
    }

    private static ChannelId channelId(BigInteger value) {
        byte[] raw = value.toByteArray();
        byte[] fixed = new byte[ChannelId.BYTES];
        int n = Math.min(raw.length, ChannelId.BYTES);
        System.arraycopy(raw, raw.length - n, fixed, ChannelId.BYTES - n, n);
        return ChannelId.fromBytes(fixed);
    }

    private static VoucherException malformed(String message) {
        return new VoucherException(VoucherException.Reason.MALFORMED, message);
    }
}
