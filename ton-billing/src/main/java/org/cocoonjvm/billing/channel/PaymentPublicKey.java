package org.cocoonjvm.billing.channel;

import java.util.Arrays;
import java.util.HexFormat;
import org.cocoonjvm.billing.ed25519.FixedKeyEd25519;

/**
 * An Ed25519 public key that signs channel states. The point is decoded and validated once, here;
 * verification is {@link FixedKeyEd25519}'s, by the contract's rule and with tables of this key
 * built on its second use.
 */
public final class PaymentPublicKey {
    public static final int BYTES = FixedKeyEd25519.PUBLIC_KEY_BYTES;

    private final byte[] encoded;
    private final FixedKeyEd25519 verifier;

    private PaymentPublicKey(byte[] encoded, FixedKeyEd25519 verifier) {
        this.encoded = encoded;
        this.verifier = verifier;
    }

    /**
     * @throws IllegalArgumentException unless 32 bytes encoding a point of the prime-order
     *     subgroup other than the identity
     */
    public static PaymentPublicKey of(byte[] encoded) {
        FixedKeyEd25519 verifier = FixedKeyEd25519.of(encoded);
        return new PaymentPublicKey(encoded.clone(), verifier);
    }

    /** Whether {@code signature} (64 bytes) signs {@code message} under this key, as the contract decides it. */
    public boolean verifies(byte[] signature, byte[] message) {
        return verifier.verify(signature, message);
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
