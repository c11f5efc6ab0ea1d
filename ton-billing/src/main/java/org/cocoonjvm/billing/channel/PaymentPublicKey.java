package org.cocoonjvm.billing.channel;

import java.util.Arrays;
import java.util.HexFormat;
import org.bouncycastle.math.ec.rfc8032.Ed25519;

/**
 * An Ed25519 public key that signs channel states. The point is decoded and validated once, here,
 * so that each verification skips the decompression.
 */
public final class PaymentPublicKey {
    public static final int BYTES = Ed25519.PUBLIC_KEY_SIZE;

    private final byte[] encoded;
    private final Ed25519.PublicPoint point;

    private PaymentPublicKey(byte[] encoded, Ed25519.PublicPoint point) {
        this.encoded = encoded;
        this.point = point;
    }

    /** @throws IllegalArgumentException unless 32 bytes encoding a valid curve point */
    public static PaymentPublicKey of(byte[] encoded) {
        if (encoded == null || encoded.length != BYTES) {
            throw new IllegalArgumentException("an Ed25519 public key is " + BYTES + " bytes, got "
                    + (encoded == null ? "none" : encoded.length));
        }
        Ed25519.PublicPoint point = Ed25519.validatePublicKeyFullExport(encoded, 0);
        if (point == null) {
            throw new IllegalArgumentException("not a valid Ed25519 public key: " + HexFormat.of().formatHex(encoded));
        }
        return new PaymentPublicKey(encoded.clone(), point);
    }

    /** Whether {@code signature} (64 bytes) signs {@code message} under this key. */
    public boolean verifies(byte[] signature, byte[] message) {
        return signature.length == Ed25519.SIGNATURE_SIZE
                && Ed25519.verify(signature, 0, point, message, 0, message.length);
    }

    public byte[] toBytes() {
        return encoded.clone();
    }

    public String hex() {
        return HexFormat.of().formatHex(encoded);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PaymentPublicKey k && Arrays.equals(encoded, k.encoded);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(encoded);
    }

    @Override
    public String toString() {
        return hex();
    }
}
