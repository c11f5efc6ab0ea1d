package org.cocoonjvm.billing.ed25519;

import java.math.BigInteger;
import org.bouncycastle.math.ec.rfc7748.X25519Field;

/**
 * A mutable point of edwards25519 ({@code -x² + y² = 1 + d·x²·y²}) in extended coordinates
 * (X:Y:Z:T) with x = X/Z, y = Y/Z and x·y = T/Z, on BouncyCastle's field arithmetic. Every
 * operation is variable-time: only public data (keys, signatures) pass through here.
 *
 * <p>Limb bounds: {@link X25519Field#mul} takes the output of a multiplication or the sum or
 * difference of two such; anything built from three terms is {@link X25519Field#carry carried}
 * first.
 */
final class ExtendedPoint {
    static final BigInteger P = BigInteger.TWO.pow(255).subtract(BigInteger.valueOf(19));
    private static final BigInteger D_VALUE = BigInteger.valueOf(-121665).multiply(BigInteger.valueOf(121666).modInverse(P));
    /** The curve constant d = −121665/121666, and 2d, the factor of the addition law. */
    static final int[] D = fieldElement(D_VALUE);
    static final int[] D2 = fieldElement(D_VALUE.shiftLeft(1));

    /** Ints per precomputed entry: y+x, y−x and 2d·x·y of an affine point. */
    static final int PRECOMPUTED_INTS = 3 * X25519Field.SIZE;

    final int[] x = X25519Field.create();
    final int[] y = X25519Field.create();
    final int[] z = X25519Field.create();
    final int[] t = X25519Field.create();

    /** Scratch of the operations that change this point, so a point being changed belongs to one thread (a key's point is only read). */
    private final int[] a = X25519Field.create();
    private final int[] b = X25519Field.create();
    private final int[] c = X25519Field.create();
    private final int[] d = X25519Field.create();
    private final int[] e = X25519Field.create();
    private final int[] f = X25519Field.create();
    private final int[] g = X25519Field.create();
    private final int[] h = X25519Field.create();

    static ExtendedPoint identity() {
        ExtendedPoint p = new ExtendedPoint();
        X25519Field.one(p.y);
        X25519Field.one(p.z);
        return p;
    }

    /**
     * Decodes RFC 8032's encoding (y little-endian, the sign of x in bit 255), rejecting what
     * RFC 8032 rejects: y ≥ p, no x for that y, and x = 0 with the sign bit set.
     *
     * @return the point with Z = 1, or null
     */
    static ExtendedPoint decode(byte[] encoded) {
        if (encoded.length != 32 || !isCanonicalY(encoded)) {
            return null;
        }
        ExtendedPoint p = new ExtendedPoint();
        X25519Field.decode255(encoded, p.y);  // drops bit 255, the sign of x
        int[] u = X25519Field.create();
        int[] v = X25519Field.create();
        X25519Field.sqr(p.y, u);
        X25519Field.mul(u, D, v);
        X25519Field.subOne(u);  // y² − 1
        X25519Field.addOne(v);  // d·y² + 1
        if (!X25519Field.sqrtRatioVar(u, v, p.x)) {
            return null;
        }
        X25519Field.normalize(p.x);
        int sign = (encoded[31] & 0xff) >>> 7;
        if (X25519Field.isZeroVar(p.x) && sign == 1) {
            return null;
        }
        if ((p.x[0] & 1) != sign) {
            X25519Field.negate(p.x, p.x);
            X25519Field.normalize(p.x);
        }
        X25519Field.one(p.z);
        X25519Field.mul(p.x, p.y, p.t);
        return p;
    }

    /** y (bits 0..254) below p = 2^255 − 19; the sign bit is not part of y. */
    private static boolean isCanonicalY(byte[] encoded) {
        if ((encoded[31] & 0x7f) != 0x7f) {
            return true;
        }
        for (int i = 30; i > 0; i--) {
            if (encoded[i] != (byte) 0xff) {
                return true;
            }
        }
        return (encoded[0] & 0xff) < 0xed;
    }

    void set(ExtendedPoint p) {
        X25519Field.copy(p.x, 0, x, 0);
        X25519Field.copy(p.y, 0, y, 0);
        X25519Field.copy(p.z, 0, z, 0);
        X25519Field.copy(p.t, 0, t, 0);
    }

    ExtendedPoint copy() {
        ExtendedPoint p = new ExtendedPoint();
        p.set(this);
        return p;
    }

    /** −(x, y) = (−x, y). */
    ExtendedPoint negated() {
        ExtendedPoint p = copy();
        X25519Field.negate(p.x, p.x);
        X25519Field.negate(p.t, p.t);
        return p;
    }

    /**
     * this += p, with the unified addition law of a = −1 twisted Edwards curves in extended
     * coordinates (Hisil, Wong, Carter, Dawson 2008, "add-2008-hwcd-3"): complete on this curve,
     * so it also doubles.
     */
    void add(ExtendedPoint p) {
        X25519Field.sub(y, x, a);
        X25519Field.sub(p.y, p.x, b);
        X25519Field.mul(a, b, a);          // (Y1−X1)(Y2−X2)
        X25519Field.add(y, x, b);
        X25519Field.add(p.y, p.x, c);
        X25519Field.mul(b, c, b);          // (Y1+X1)(Y2+X2)
        X25519Field.mul(t, p.t, c);
        X25519Field.mul(c, D2, c);         // 2d·T1·T2
        X25519Field.mul(z, p.z, d);
        X25519Field.add(d, d, d);          // 2·Z1·Z2
        finish();
    }

    /**
     * this += q, or this −= q when {@code negate}, for an affine q stored at {@code offset} of
     * {@code table} as (y+x, y−x, 2d·x·y): seven multiplications. −q = (−x, y) swaps the first two
     * and negates the third.
     */
    void addPrecomputed(int[] table, int offset, boolean negate) {
        System.arraycopy(table, offset + (negate ? X25519Field.SIZE : 0), e, 0, X25519Field.SIZE);
        System.arraycopy(table, offset + (negate ? 0 : X25519Field.SIZE), f, 0, X25519Field.SIZE);
        System.arraycopy(table, offset + 2 * X25519Field.SIZE, g, 0, X25519Field.SIZE);
        X25519Field.sub(y, x, a);
        X25519Field.mul(a, f, a);          // (Y−X)(y2−x2)
        X25519Field.add(y, x, b);
        X25519Field.mul(b, e, b);          // (Y+X)(y2+x2)
        X25519Field.mul(t, g, c);          // T·2d·x2·y2
        if (negate) {
            X25519Field.negate(c, c);
        }
        X25519Field.add(z, z, d);          // 2Z (Z2 = 1)
        finish();
    }

    /** The common tail of both additions, from A, B, C, D in a, b, c, d. */
    private void finish() {
        X25519Field.apm(b, a, h, e);       // H = B+A, E = B−A
        X25519Field.apm(d, c, g, f);       // G = D+C, F = D−C
        X25519Field.carry(f);
        X25519Field.carry(g);
        X25519Field.mul(e, f, x);
        X25519Field.mul(g, h, y);
        X25519Field.mul(f, g, z);
        X25519Field.mul(e, h, t);
    }

    /**
     * Writes this point as (y+x, y−x, 2d·x·y) at {@code offset} of {@code table}, given 1/Z;
     * normalized, so table entries need no carry.
     */
    void storePrecomputed(int[] zInverse, int[] table, int offset) {
        X25519Field.mul(x, zInverse, a);
        X25519Field.mul(y, zInverse, b);
        X25519Field.apm(b, a, c, d);
        X25519Field.mul(a, b, e);
        X25519Field.mul(e, D2, e);
        X25519Field.normalize(c);
        X25519Field.normalize(d);
        X25519Field.normalize(e);
        X25519Field.copy(c, 0, table, offset);
        X25519Field.copy(d, 0, table, offset + X25519Field.SIZE);
        X25519Field.copy(e, 0, table, offset + 2 * X25519Field.SIZE);
    }

    /** RFC 8032's 32-byte encoding: y little-endian, the low bit of x in bit 255. */
    void encode(byte[] out) {
        X25519Field.invVar(z, a);
        X25519Field.mul(x, a, b);
        X25519Field.mul(y, a, c);
        X25519Field.normalize(b);
        X25519Field.normalize(c);
        X25519Field.encode(c, out, 0);
        out[31] |= (byte) ((b[0] & 1) << 7);
    }

    static int[] fieldElement(BigInteger value) {
        byte[] bigEndian = value.mod(P).toByteArray();
        byte[] littleEndian = new byte[32];
        for (int i = 0; i < Math.min(32, bigEndian.length); i++) {
            littleEndian[i] = bigEndian[bigEndian.length - 1 - i];
        }
        int[] z = X25519Field.create();
        X25519Field.decode255(littleEndian, z);
        return z;
    }
}
