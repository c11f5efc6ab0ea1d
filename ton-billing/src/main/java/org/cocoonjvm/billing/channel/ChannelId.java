package org.cocoonjvm.billing.channel;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * A payment channel's {@code channel_id:uint128}. It is in every signed state, so a voucher for one
 * channel can never be replayed on another (the contract fails such a state with exit 114).
 */
public record ChannelId(long high, long low) {
    public static final int BYTES = 16;

    /** A fresh random id; 128 random bits make a collision between a gateway's channels negligible. */
    public static ChannelId random(SecureRandom random) {
        return new ChannelId(random.nextLong(), random.nextLong());
    }

    /** @throws IllegalArgumentException unless exactly 16 bytes */
    public static ChannelId fromBytes(byte[] bytes) {
        if (bytes == null || bytes.length != BYTES) {
            throw new IllegalArgumentException("a channel id is " + BYTES + " bytes, got "
                    + (bytes == null ? "none" : bytes.length));
        }
        ByteBuffer b = ByteBuffer.wrap(bytes);
        return new ChannelId(b.getLong(), b.getLong());
    }

    /** @throws IllegalArgumentException unless 32 hex digits */
    public static ChannelId fromHex(String hex) {
        if (hex == null || hex.length() != 2 * BYTES) {
            throw new IllegalArgumentException("a channel id is " + 2 * BYTES + " hex digits, got '" + hex + "'");
        }
        return fromBytes(HexFormat.of().parseHex(hex));
    }

    public byte[] toBytes() {
        return ByteBuffer.allocate(BYTES).putLong(high).putLong(low).array();
    }

    /** The unsigned 128-bit value, as ton4j's cell builder takes it. */
    public BigInteger toBigInteger() {
        return new BigInteger(1, toBytes());
    }

    /** 32 lowercase hex digits, the form shown in status and file names. */
    public String hex() {
        return HexFormat.of().formatHex(toBytes());
    }

    @Override
    public String toString() {
        return hex();
    }
}
