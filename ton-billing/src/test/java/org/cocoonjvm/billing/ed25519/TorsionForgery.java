package org.cocoonjvm.billing.ed25519;

import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;
import org.cocoonjvm.billing.ed25519.ReferenceCurve.Point;

/**
 * Signatures that hold only up to a torsion point, made by whoever holds the key: R = [r]B + T
 * for a torsion point T ≠ 0, S = r + k·a mod L with k = SHA-512(R ‖ A ‖ M). Then
 * [S]B − [k]A = [r]B = R − T, so the cofactored check ([8][S]B = [8]R + [8][k]A) passes and the
 * cofactorless one, the TON contract's, fails.
 */
public final class TorsionForgery {
    private static final BigInteger R_SCALAR = BigInteger.valueOf(77);

    private TorsionForgery() {
    }

    /**
     * @param seed the signer's 32-byte RFC 8032 private key
     * @param torsion which torsion point, 1 to 7 (see {@link ReferenceCurve#torsion()})
     * @return R ‖ S, 64 bytes
     */
    public static byte[] sign(byte[] seed, byte[] message, int torsion) {
        if (torsion < 1 || torsion > 7) {
            throw new IllegalArgumentException("torsion point 1 to 7, got " + torsion);
        }
        byte[] h = sha512(seed);
        h[0] &= (byte) 0xf8;
        h[31] &= 0x7f;
        h[31] |= 0x40;
        BigInteger a = ReferenceCurve.fromLittleEndian(Arrays.copyOf(h, 32));
        byte[] publicKey = ReferenceCurve.B.times(a).encode();
        Point r = ReferenceCurve.B.times(R_SCALAR).plus(ReferenceCurve.torsion().get(torsion));
        byte[] rBytes = r.encode();
        BigInteger k = ReferenceCurve.fromLittleEndian(sha512(rBytes, publicKey, message)).mod(ReferenceCurve.L);
        BigInteger s = R_SCALAR.add(k.multiply(a)).mod(ReferenceCurve.L);
        byte[] signature = new byte[64];
        System.arraycopy(rBytes, 0, signature, 0, 32);
        System.arraycopy(Scalars.littleEndian(s), 0, signature, 32, 32);
        return signature;
    }

    private static byte[] sha512(byte[]... parts) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-512");
            for (byte[] part : parts) {
                digest.update(part);
            }
            return digest.digest();
        } catch (GeneralSecurityException e) {
            throw new AssertionError(e);
        }
    }
}
