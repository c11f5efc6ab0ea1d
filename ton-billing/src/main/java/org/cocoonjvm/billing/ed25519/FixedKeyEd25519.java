package org.cocoonjvm.billing.ed25519;

import java.math.BigInteger;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import org.bouncycastle.math.ec.rfc8032.Ed25519;

/**
 * Ed25519 verification under one public key A that verifies many signatures (a payment
 * channel's payer key): both B and A get tables of multiples, so a verification is
 * R' = [S]B + [−k]A, k = SHA-512(R ‖ A ‖ M) mod L, as mixed additions with no doublings, then one
 * inversion to encode R'. A's table is built when the key verifies its second signature: most
 * keys are made where nobody verifies, and some verify once.
 *
 * <p>The acceptance rule is the TON contract's ({@code CHKSIGNU}, OpenSSL's Ed25519): S below L,
 * and encode([S]B − [k]A) equal to R byte for byte (cofactorless; a non-canonical R never
 * matches, since encodings are canonical). Keys are checked harder than the contract does: see
 * {@link #of}. Thread-safe.
 */
public final class FixedKeyEd25519 {
    public static final int PUBLIC_KEY_BYTES = 32;
    public static final int SIGNATURE_BYTES = 64;

    /**
     * Signed 8-bit digits for both tables: 32 additions per scalar, 480 KiB per table (about 3 ms
     * to build a key's). Measured against 4 to 7 bits by {@code Ed25519WidthBenchmark}
     * (docs/benchmarks.md): the widest was fastest, with one key and with eight in turn.
     */
    static final int BASE_WIDTH = 8;
    static final int KEY_WIDTH = 8;

    /** B's table, built when the first signature is verified, not when the first key is made. */
    private static final class Base {
        static final FixedBaseTable TABLE = FixedBaseTable.of(basePoint(), BASE_WIDTH);
    }

    private final byte[] encoded;
    /** A, with Z = 1; only ever copied from, never changed. */
    final ExtendedPoint point;
    private volatile FixedBaseTable table;
    /** Set by the first verification; the second builds the table. A race costs at most one more table-less verification. */
    private volatile boolean verifiedBefore;

    private FixedKeyEd25519(byte[] encoded, ExtendedPoint point) {
        this.encoded = encoded;
        this.point = point;
    }

    /**
     * @throws IllegalArgumentException unless 32 bytes encoding, canonically, a point of the
     *     prime-order subgroup other than the identity. The contract would also take a key with a
     *     small-order component; refusing such a key up front only narrows what we accept.
     */
    public static FixedKeyEd25519 of(byte[] publicKey) {
        if (publicKey == null || publicKey.length != PUBLIC_KEY_BYTES) {
            throw new IllegalArgumentException("an Ed25519 public key is " + PUBLIC_KEY_BYTES + " bytes, got "
                    + (publicKey == null ? "none" : publicKey.length));
        }
        ExtendedPoint point = ExtendedPoint.decode(publicKey);
        // BouncyCastle's full check adds what decoding alone misses: small order, and a point outside the subgroup.
        if (point == null || !Ed25519.validatePublicKeyFull(publicKey, 0)) {
            throw new IllegalArgumentException("not a valid Ed25519 public key: " + HexFormat.of().formatHex(publicKey));
        }
        return new FixedKeyEd25519(publicKey.clone(), point);
    }

    /** Whether {@code signature} (R ‖ S, 64 bytes) signs {@code message} under this key. */
    public boolean verify(byte[] signature, byte[] message) {
        return verify(signature, message, Base.TABLE, tableFromSecondUse());
    }

    /**
     * {@link #verify(byte[], byte[])} with the tables given: B's, and A's or null for none
     * ({@code Ed25519WidthBenchmark} passes others).
     */
    boolean verify(byte[] signature, byte[] message, FixedBaseTable base, FixedBaseTable keyTable) {
        if (signature == null || signature.length != SIGNATURE_BYTES || !Scalars.isCanonical(signature, 32)) {
            return false;
        }
        MessageDigest sha512 = sha512();
        sha512.update(signature, 0, 32);
        sha512.update(encoded);
        sha512.update(message);
        byte[] k = Scalars.reduce(sha512.digest());
        ExtendedPoint r = ExtendedPoint.identity();
        base.addMultiple(r, signature, 32, false);
        if (keyTable != null) {
            keyTable.addMultiple(r, k, 0, true);
        } else {
            r.add(multipleWithoutTable(k));
        }
        byte[] encodedR = new byte[32];
        r.encode(encodedR);
        return Arrays.equals(encodedR, 0, 32, signature, 0, 32);
    }

    /**
     * A's table, built when the key verifies a second time: a key checked once (the gateway's
     * check of a worker's initial state) should not cost a table's build time and memory for the
     * life of its channel. Two threads may both build it: same contents, and the table is immutable.
     */
    private FixedBaseTable tableFromSecondUse() {
        FixedBaseTable t = table;
        if (t == null) {
            if (!verifiedBefore) {
                verifiedBefore = true;
                return null;
            }
            t = FixedBaseTable.of(point, KEY_WIDTH);
            table = t;
        }
        return t;
    }

    /**
     * [−k]A without a table: signed 4-bit digits of k, most significant first, four doublings
     * per digit and one addition of a multiple from a 16-entry list (±A … ±8A), doubling with the
     * addition law: about 150 µs, twice BouncyCastle's verification, once per key.
     */
    private ExtendedPoint multipleWithoutTable(byte[] k) {
        int width = 4;
        int windows = FixedBaseTable.windowsFor(width);
        byte[] digits = Scalars.signedDigits(k, 0, width, windows);
        ExtendedPoint[] multiples = new ExtendedPoint[17];  // d·A at index 8 + d, d in [−8, 8]
        ExtendedPoint multiple = ExtendedPoint.identity();
        for (int j = 1; j <= 8; j++) {
            multiple.add(point);
            multiples[8 + j] = multiple.copy();
            multiples[8 - j] = multiple.negated();
        }
        ExtendedPoint sum = ExtendedPoint.identity();
        for (int i = windows - 1; i >= 0; i--) {
            for (int d = 0; d < width; d++) {
                sum.add(sum);
            }
            int digit = -digits[i];
            if (digit != 0) {
                sum.add(multiples[8 + digit]);
            }
        }
        return sum;
    }

    private static MessageDigest sha512() {
        try {
            return MessageDigest.getInstance("SHA-512");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-512", e);
        }
    }

    /** B: y = 4/5, x even (RFC 8032, 5.1). */
    static ExtendedPoint basePoint() {
        BigInteger y = BigInteger.valueOf(4).multiply(BigInteger.valueOf(5).modInverse(ExtendedPoint.P)).mod(ExtendedPoint.P);
        return ExtendedPoint.decode(Scalars.littleEndian(y));
    }
}
