package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.iwebpp.crypto.TweetNaclFast;

import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.junit.jupiter.api.Test;
import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.smartcontract.payments.PaymentChannel;
import org.ton.ton4j.smartcontract.payments.PaymentsUtils;
import org.ton.ton4j.utils.Utils;

import java.math.BigInteger;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * Pure-JVM golden tests for what {@link OnChainChannel} puts on the wire: fixed keys and ids give
 * fixed bytes, so any change in ton4j or in our use of it shows up here before it reaches a chain.
 */
class ChannelMessagesTest {
    private static final HexFormat HEX = HexFormat.of();
    private static final PaymentKeyPair KEYS_A = keys(1);
    private static final PaymentKeyPair KEYS_B = keys(2);
    private static final ChannelTerms TERMS =
            new ChannelTerms(
                    BigInteger.valueOf(0x1234_5678_9abcL),
                    Address.of("0:" + "aa".repeat(32)),
                    Address.of("0:" + "bb".repeat(32)),
                    KEYS_A.publicKey().toBytes(),
                    KEYS_B.publicKey().toBytes(),
                    BigInteger.valueOf(20_000_000),
                    Duration.ofHours(1),
                    Duration.ofMinutes(10));
    private static final ChannelCosts COSTS = new ChannelCosts(FeeScheduleTest.sandboxFees());
    private static final OnChainChannel A = OnChainChannel.asA(TERMS, KEYS_A, null, COSTS);
    private static final OnChainChannel B = OnChainChannel.asB(TERMS, KEYS_B, null, COSTS);

    private static PaymentKeyPair keys(int seedByte) {
        byte[] seed = new byte[32];
        Arrays.fill(seed, (byte) seedByte);
        return PaymentKeyPair.fromSeed(seed);
    }

    private static void assertSignedBy(PaymentKeyPair keys, Cell signedCell, byte[] signature) {
        assertThat(
                        new TweetNaclFast.Signature(keys.publicKey().toBytes(), null)
                                .detached_verify(signedCell.hash(), signature))
                .as("Ed25519 signature over the cell hash")
                .isTrue();
    }

    /** Ed25519 signatures are deterministic, so fixed keys and cells give these exact bytes. */
    private static void assertGoldenSignature(
            PaymentKeyPair keys, Cell signedCell, byte[] signature, String hex) {
        assertSignedBy(keys, signedCell, signature);
        assertThat(HEX.formatHex(signature)).isEqualTo(hex);
    }

    @Test
    void deploysTheOfficialContractCode() {
        Cell code =
                PaymentChannel.builder()
                        .myKeyPair(Utils.generateSignatureKeyPairFromSeed(KEYS_A.seed()))
                        .hisPublicKey(KEYS_B.publicKey().toBytes())
                        .build()
                        .createCodeCell();
        assertThat(HEX.formatHex(code.hash()))
                .isEqualTo("41f5b77f02d4a96eb465197215ed00923720a6c731fa32934f9c0e80ffb85589");
    }

    @Test
    void bothPartiesDeriveTheSameAddressFromTheTerms() {
        assertThat(A.address()).isEqualTo(B.address());
        assertThat(A.address().toRaw())
                .isEqualTo("0:ea6b434dbb6fe6fab9b33339c95d95a6bdbfcbc4083924282bba0bdfef9cc4cf");
    }

    @Test
    void theUncooperativeCloseCarriesTheCodecsSignedStatesVerbatim() {
        SignedSemiChannel stateA =
                KEYS_A.sign(
                        new SemiChannelState(A.channelId(), new SemiChannelBody(3, 300)));
        SignedSemiChannel stateB =
                KEYS_B.sign(new SemiChannelState(A.channelId(), SemiChannelBody.INITIAL));
        assertThat(A.channelId().toBigInteger()).isEqualTo(TERMS.channelId());
        // What the contract checks: A's signature over the tagged state without counterparty.
        Cell state =
                PaymentsUtils.createSemiChannelState(
                        TERMS.channelId(),
                        PaymentsUtils.createSemiChannelBody(
                                BigInteger.valueOf(3), BigInteger.valueOf(300), null),
                        null);
        assertSignedBy(KEYS_A, state, stateA.signature());
        Cell signed = Cell.fromBoc(stateA.boc());
        assertThat(HEX.formatHex(signed.hash()))
                .isEqualTo("fd0b21225f6543edf63d584b6c93f1430bca0a944d4b3a6dccca162651f6cc14");

        assertThatThrownBy(() -> A.startUncooperativeClose(null, stateB, stateA))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not signed by party A");
        SignedSemiChannel otherChannel =
                KEYS_A.sign(
                        new SemiChannelState(new ChannelId(0, 7), new SemiChannelBody(3, 300)));
        assertThatThrownBy(() -> A.startUncooperativeClose(null, otherChannel, stateB))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not " + A.channelId());
    }

    @Test
    void theCommitCarriesTheCommitOpAndBothSignatures() {
        byte[] signatureB = B.signCommit(2, 1);
        byte[] signatureA = A.signCommit(2, 1);
        Cell body =
                PaymentsUtils.createCooperativeCommitBody(
                        TERMS.channelId(), BigInteger.TWO, BigInteger.ONE);
        assertSignedBy(KEYS_A, body, signatureA);
        assertGoldenSignature(
                KEYS_B,
                body,
                signatureB,
                "ec052274bb049a7f0b123a7b705e8401be9c215429d5bdfd2330278b9ccb9a2331228b1054706effa40fa34e9b4e449a14a3428581133cea4f176b546e19c200");
    }

    @Test
    void closeSignaturesCoverBalancesAndBothSeqnos() {
        CloseTerms close = new CloseTerms(BigInteger.valueOf(700), BigInteger.valueOf(300), 3, 1);
        byte[] signatureA = A.signClose(close);
        Cell body =
                PaymentsUtils.createCooperativeCloseChannelBody(
                        TERMS.channelId(),
                        close.balanceA(),
                        close.balanceB(),
                        BigInteger.valueOf(3),
                        BigInteger.ONE);
        assertGoldenSignature(
                KEYS_A,
                body,
                signatureA,
                "f4b7db96a6aa2cb3a96b7153990b1374f7c30c33c6dfbc7cdd9988870e8d5eedb27a2f04c644d9d88407a4dbf2ed8305cc594999330851647d16620cdd5c150a");
    }

    @Test
    void seqnosMustFitTheContractsUint32() {
        assertThatThrownBy(() -> new CloseTerms(BigInteger.ONE, BigInteger.ONE, 1L << 32, 1))
                .hasMessageContaining("uint32");
        assertThatThrownBy(() -> new CloseTerms(BigInteger.valueOf(-1), BigInteger.ONE, 1, 1))
                .hasMessageContaining("negative");
    }

    @Test
    void termsRejectWhatTheContractCannotHold() {
        byte[] keyA = KEYS_A.publicKey().toBytes();
        byte[] keyB = KEYS_B.publicKey().toBytes();
        BigInteger fee = TERMS.excessFee();
        Duration hour = Duration.ofHours(1);
        assertThatThrownBy(() -> termsWith(BigInteger.ONE.shiftLeft(128), keyB, fee, hour))
                .hasMessageContaining("uint128");
        assertThatThrownBy(() -> termsWith(BigInteger.ONE, keyA, fee, hour))
                .hasMessageContaining("different keys");
        assertThatThrownBy(() -> termsWith(BigInteger.ONE, keyB, BigInteger.ZERO, hour))
                .hasMessageContaining("excess fee");
        assertThatThrownBy(() -> termsWith(BigInteger.ONE, keyB, fee, Duration.ofMillis(1500)))
                .hasMessageContaining("whole seconds");
        assertThatThrownBy(() -> OnChainChannel.asA(TERMS, KEYS_B, null, COSTS))
                .hasMessageContaining("party A");
    }

    /** {@link #TERMS}' addresses and key A, with the fields a rejection case varies. */
    private static ChannelTerms termsWith(
            BigInteger channelId, byte[] keyB, BigInteger excessFee, Duration quarantine) {
        return new ChannelTerms(
                channelId,
                TERMS.addressA(),
                TERMS.addressB(),
                KEYS_A.publicKey().toBytes(),
                keyB,
                excessFee,
                quarantine,
                Duration.ofHours(1));
    }
}
