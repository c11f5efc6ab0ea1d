package org.cocoonjvm.billing.ed25519;

import org.bouncycastle.math.ec.rfc7748.X25519Field;

/**
 * Multiples of one point P for scalar multiplication without doublings: window i holds
 * j·2^(width·i)·P for j = 1 … 2^(width−1), affine, as (y+x, y−x, 2d·x·y). A scalar written in
 * signed digits of {@code width} bits ({@link Scalars#signedDigits}) is then one mixed addition
 * per nonzero digit. Immutable once built.
 */
final class FixedBaseTable {
    /** Scalars here are below 2^253 (S below L, k reduced modulo L). */
    private static final int SCALAR_BITS = 253;

    final int width;
    final int windows;
    private final int perWindow;
    private final int[] entries;

    private FixedBaseTable(int width, int[] entries) {
        this.width = width;
        this.windows = windowsFor(width);
        this.perWindow = 1 << (width - 1);
        this.entries = entries;
    }

    static int windowsFor(int width) {
        return (SCALAR_BITS + width - 1) / width;
    }

    static FixedBaseTable of(ExtendedPoint p, int width) {
        int windows = windowsFor(width);
        int perWindow = 1 << (width - 1);
        ExtendedPoint[] multiples = new ExtendedPoint[windows * perWindow];
        ExtendedPoint base = new ExtendedPoint();
        base.set(p);
        for (int i = 0; i < windows; i++) {
            ExtendedPoint multiple = new ExtendedPoint();
            multiple.set(base);
            multiples[i * perWindow] = multiple;
            for (int j = 1; j < perWindow; j++) {
                ExtendedPoint next = new ExtendedPoint();
                next.set(multiple);
                next.add(base);
                multiples[i * perWindow + j] = next;
                multiple = next;
            }
            base.set(multiple);  // 2^(width−1)·base; doubled once more below, the next window's base
            base.add(multiple);
        }
        int[] entries = new int[multiples.length * ExtendedPoint.PRECOMPUTED_INTS];
        int[][] zInverses = batchInvertZ(multiples);
        for (int k = 0; k < multiples.length; k++) {
            multiples[k].storePrecomputed(zInverses[k], entries, k * ExtendedPoint.PRECOMPUTED_INTS);
        }
        return new FixedBaseTable(width, entries);
    }

    /**
     * Adds [scalar]P, or [−scalar]P when {@code negate}, to {@code accumulator}; the scalar is the
     * 32 little-endian bytes at {@code offset}, below 2^253.
     */
    void addMultiple(ExtendedPoint accumulator, byte[] scalar, int offset, boolean negate) {
        byte[] digits = Scalars.signedDigits(scalar, offset, width, windows);
        for (int i = 0; i < windows; i++) {
            int digit = digits[i];
            if (digit != 0) {
                int j = Math.abs(digit) - 1;
                accumulator.addPrecomputed(entries, (i * perWindow + j) * ExtendedPoint.PRECOMPUTED_INTS, (digit < 0) != negate);
            }
        }
    }

    /** 1/Z of every point with one inversion (Montgomery's trick): products up, then back down. */
    private static int[][] batchInvertZ(ExtendedPoint[] points) {
        int n = points.length;
        int[][] prefix = new int[n][];
        prefix[0] = points[0].z.clone();
        for (int k = 1; k < n; k++) {
            prefix[k] = X25519Field.create();
            X25519Field.mul(prefix[k - 1], points[k].z, prefix[k]);
        }
        int[] inverse = X25519Field.create();
        X25519Field.invVar(prefix[n - 1], inverse);  // 1/(Z0·…·Z(n−1))
        int[][] out = new int[n][];
        for (int k = n - 1; k > 0; k--) {
            out[k] = X25519Field.create();
            X25519Field.mul(inverse, prefix[k - 1], out[k]);
            X25519Field.mul(inverse, points[k].z, inverse);
        }
        out[0] = inverse;
        return out;
    }
}
