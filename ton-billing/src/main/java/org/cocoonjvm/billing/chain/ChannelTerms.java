package org.cocoonjvm.billing.chain;

import org.ton.ton4j.address.Address;

import java.math.BigInteger;
import java.time.Duration;
import java.util.Arrays;

/**
 * What both parties of one payment channel agree on before it exists. Together with the official
 * contract code these fix the channel's address, so both sides derive the same one.
 *
 * <p>A is the payer (the gateway), B the payee (the worker). There is no misbehaviour fine: with a
 * fine, {@code fine + sent_A > deposit_A} freezes the channel forever in the official contract
 * (finish aborts with exit 5), and the deposit cap that would prevent it buys nothing a plain
 * challenge doesn't.
 *
 * @param channelId uint128, unique per (A, B) pair and reopening
 * @param excessFee the gas reserve the contract keeps beyond both balances; external close, commit
 *     and finish pay their gas from it
 * @param quarantine how long a state submitted by an uncooperative close may be challenged
 * @param conditionalClose extra wait after the quarantine before anyone may finish
 */
public record ChannelTerms(
        BigInteger channelId,
        Address addressA,
        Address addressB,
        byte[] publicKeyA,
        byte[] publicKeyB,
        BigInteger excessFee,
        Duration quarantine,
        Duration conditionalClose) {

    private static final BigInteger MAX_ID = BigInteger.ONE.shiftLeft(128);

    public ChannelTerms {
        if (channelId.signum() < 0 || channelId.compareTo(MAX_ID) >= 0) {
            throw new IllegalArgumentException("channel id must fit in uint128: " + channelId);
        }
        if (publicKeyA.length != 32 || publicKeyB.length != 32) {
            throw new IllegalArgumentException("Ed25519 public keys are 32 bytes");
        }
        if (Arrays.equals(publicKeyA, publicKeyB)) {
            throw new IllegalArgumentException("A and B must have different keys");
        }
        if (excessFee.signum() <= 0) {
            throw new IllegalArgumentException(
                    "excess fee must be positive: the contract pays external messages from it");
        }
        checkSeconds("quarantine", quarantine);
        checkSeconds("conditional close", conditionalClose);
        publicKeyA = publicKeyA.clone();
        publicKeyB = publicKeyB.clone();
    }

    private static void checkSeconds(String what, Duration d) {
        if (d.isNegative() || d.toSeconds() > 0xFFFFFFFFL || d.toNanos() % 1_000_000_000L != 0) {
            throw new IllegalArgumentException(
                    what + " must be whole seconds fitting uint32: " + d);
        }
    }

    @Override
    public byte[] publicKeyA() {
        return publicKeyA.clone();
    }

    @Override
    public byte[] publicKeyB() {
        return publicKeyB.clone();
    }
}
