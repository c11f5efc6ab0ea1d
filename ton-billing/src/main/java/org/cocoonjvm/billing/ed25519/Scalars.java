package org.cocoonjvm.billing.ed25519;

import java.math.BigInteger;

/** Scalars modulo the group order L, as 32 little-endian bytes. */
final class Scalars {
    /** L = 2^252 + 27742317777372353535851937790883648493, the order of the base point. */
    static final BigInteger L = BigInteger.TWO.pow(252).add(new BigInteger("27742317777372353535851937790883648493"));
    private static final byte[] L_BYTES = littleEndian(L);

    private Scalars() {
    }

    /** Whether the 32 bytes at {@code offset} encode an integer below L (RFC 8032's check on S). */
    static boolean isCanonical(byte[] bytes, int offset) {
        for (int i = 31; i >= 0; i--) {
            int s = bytes[offset + i] & 0xff;
            int l = L_BYTES[i] & 0xff;
            if (s != l) {
                return s < l;
            }
        }
        return false;  // equal to L
    }

    /** A little-endian integer of any length (a SHA-512 digest) reduced modulo L. */
    static byte[] reduce(byte[] littleEndian) {
        byte[] bigEndian = new byte[littleEndian.length];
        for (int i = 0; i < littleEndian.length; i++) {
            bigEndian[i] = littleEndian[littleEndian.length - 1 - i];
        }
        return littleEndian(new BigInteger(1, bigEndian).mod(L));
    }

    /**
     * The scalar (below 2^253) at {@code offset} as {@code windows} signed digits of {@code width}
     * bits, in [−2^(width−1), 2^(width−1)), least significant first: scalar = Σ digit[i]·2^(width·i).
     * A digit at or above half the radix becomes negative and carries one into the next window.
     */
    static byte[] signedDigits(byte[] scalar, int offset, int width, int windows) {
        byte[] digits = new byte[windows];
        int mask = (1 << width) - 1;
        int half = 1 << (width - 1);
        int carry = 0;
        for (int i = 0; i < windows; i++) {
            int value = bits(scalar, offset, i * width, mask) + carry;
            carry = (value + half) >>> width;
            digits[i] = (byte) (value - (carry << width));
        }
        if (carry != 0) {
            throw new IllegalArgumentException("scalar too large for " + windows + " windows of " + width + " bits");
        }
        return digits;
    }

    /** The bits from {@code bit} under {@code mask} of the 32 bytes at {@code offset}; zero past the end. */
    private static int bits(byte[] scalar, int offset, int bit, int mask) {
        int at = bit >>> 3;
        if (at >= 32) {
            return 0;
        }
        int word = scalar[offset + at] & 0xff;
        if (at + 1 < 32) {
            word |= (scalar[offset + at + 1] & 0xff) << 8;
        }
        return (word >>> (bit & 7)) & mask;
    }

    static byte[] littleEndian(BigInteger value) {
        byte[] bigEndian = value.toByteArray();
        byte[] out = new byte[32];
        for (int i = 0; i < Math.min(32, bigEndian.length); i++) {
            out[i] = bigEndian[bigEndian.length - 1 - i];
        }
        return out;
    }
}
