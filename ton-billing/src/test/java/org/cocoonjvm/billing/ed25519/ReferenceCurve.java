package org.cocoonjvm.billing.ed25519;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;

/**
 * edwards25519 in affine coordinates on BigInteger, straight from RFC 8032's definitions: slow,
 * short, and independent of the code under test. Tests use it to build adversarial inputs
 * (torsion points, R shifted by a torsion point) that no signer would produce.
 */
public final class ReferenceCurve {
    static final BigInteger P = BigInteger.TWO.pow(255).subtract(BigInteger.valueOf(19));
    static final BigInteger L = BigInteger.TWO.pow(252).add(new BigInteger("27742317777372353535851937790883648493"));
    static final BigInteger D = BigInteger.valueOf(-121665).multiply(BigInteger.valueOf(121666).modInverse(P)).mod(P);
    static final Point IDENTITY = new Point(BigInteger.ZERO, BigInteger.ONE);
    static final Point B = decode(Scalars.littleEndian(BigInteger.valueOf(4).multiply(BigInteger.valueOf(5).modInverse(P)).mod(P)));

    public record Point(BigInteger x, BigInteger y) {
        Point plus(Point q) {
            BigInteger dxy = D.multiply(x).multiply(q.x).multiply(y).multiply(q.y).mod(P);
            BigInteger x3 = x.multiply(q.y).add(y.multiply(q.x)).multiply(BigInteger.ONE.add(dxy).modInverse(P));
            BigInteger y3 = y.multiply(q.y).add(x.multiply(q.x)).multiply(BigInteger.ONE.subtract(dxy).mod(P).modInverse(P));
            return new Point(x3.mod(P), y3.mod(P));
        }

        Point negate() {
            return new Point(x.negate().mod(P), y);
        }

        Point times(BigInteger k) {
            Point sum = IDENTITY;
            Point doubled = this;
            for (int i = 0; i < k.bitLength(); i++) {
                if (k.testBit(i)) {
                    sum = sum.plus(doubled);
                }
                doubled = doubled.plus(doubled);
            }
            return sum;
        }

        byte[] encode() {
            byte[] out = Scalars.littleEndian(y);
            if (x.testBit(0)) {
                out[31] |= (byte) 0x80;
            }
            return out;
        }
    }

    private static final List<Point> TORSION = findTorsion();

    private ReferenceCurve() {
    }

    /** The 8 points of order dividing 8, T0 = 0 and Ti = [i]T1 with T1 of order 8. */
    public static List<Point> torsion() {
        return TORSION;
    }

    /** Multiples of [L]Q for the first Q (by y) of the full group whose [L]Q has order 8. */
    private static List<Point> findTorsion() {
        for (int y = 3; ; y++) {
            Point q = decode(Scalars.littleEndian(BigInteger.valueOf(y)));
            if (q == null) {
                continue;
            }
            Point t = q.times(L);
            if (!t.times(BigInteger.valueOf(4)).equals(IDENTITY)) {
                List<Point> all = new ArrayList<>();
                Point multiple = IDENTITY;
                for (int i = 0; i < 8; i++) {
                    all.add(multiple);
                    multiple = multiple.plus(t);
                }
                return List.copyOf(all);
            }
        }
    }

    /** RFC 8032 5.1.3, returning null where it fails. */
    static Point decode(byte[] encoded) {
        byte[] yBytes = encoded.clone();
        boolean sign = (yBytes[31] & 0x80) != 0;
        yBytes[31] &= 0x7f;
        BigInteger y = fromLittleEndian(yBytes);
        if (y.compareTo(P) >= 0) {
            return null;
        }
        BigInteger u = y.multiply(y).subtract(BigInteger.ONE).mod(P);
        BigInteger v = D.multiply(y).multiply(y).add(BigInteger.ONE).mod(P);
        BigInteger x2 = u.multiply(v.modInverse(P)).mod(P);
        if (x2.signum() == 0) {
            return sign ? null : new Point(BigInteger.ZERO, y);
        }
        BigInteger x = x2.modPow(P.add(BigInteger.valueOf(3)).shiftRight(3), P);
        if (!x.multiply(x).subtract(x2).mod(P).equals(BigInteger.ZERO)) {
            x = x.multiply(BigInteger.TWO.modPow(P.subtract(BigInteger.ONE).shiftRight(2), P)).mod(P);
        }
        if (!x.multiply(x).subtract(x2).mod(P).equals(BigInteger.ZERO)) {
            return null;
        }
        if (x.testBit(0) != sign) {
            x = P.subtract(x);
        }
        return new Point(x, y);
    }

    static BigInteger fromLittleEndian(byte[] bytes) {
        byte[] bigEndian = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            bigEndian[i] = bytes[bytes.length - 1 - i];
        }
        return new BigInteger(1, bigEndian);
    }
}
