package org.cocoonjvm.billing.channel;

import static org.assertj.core.api.Assertions.assertThat;

import com.iwebpp.crypto.TweetNaclFast;
import java.math.BigInteger;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.cell.CellSlice;
import org.ton.ton4j.smartcontract.payments.ClosingConfig;
import org.ton.ton4j.smartcontract.payments.PaymentChannel;
import org.ton.ton4j.smartcontract.types.ChannelConfig;
import org.ton.ton4j.utils.Utils;

/** Our voucher BOC against ton4j's own {@code PaymentChannel}, which signs with TweetNaCl. */
class SignedSemiChannelGoldenTest {
    private static final byte[] SEED = HexFormat.of().parseHex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");

    @ParameterizedTest
    @CsvSource({
            "00000000000000000000000000000001, 0, 0",
            "0123456789abcdef0123456789abcdef, 1, 7",
            "ffffffffffffffffffffffffffffffff, 42, 1000000000",
            "80000000000000000000000000000000, 4294967294, 9223372036854775807",
    })
    void bocIsByteIdenticalToTon4jPaymentChannel(String channelHex, long seqno, long sent) {
        ChannelId id = ChannelId.fromHex(channelHex);
        PaymentKeyPair ours = PaymentKeyPair.fromSeed(SEED);
        TweetNaclFast.Signature.KeyPair theirs = Utils.generateSignatureKeyPairFromSeed(SEED);
        assertThat(ours.publicKey().toBytes()).isEqualTo(theirs.getPublicKey());

        PaymentChannel channel = PaymentChannel.builder()
                .isA(true)
                .myKeyPair(theirs)
                .hisPublicKey(theirs.getPublicKey())
                .channelConfig(ChannelConfig.builder().channelId(id.toBigInteger())
                        .addressA(Address.of("0:" + "11".repeat(32))).addressB(Address.of("0:" + "22".repeat(32)))
                        .initBalanceA(BigInteger.ONE).initBalanceB(BigInteger.ZERO).build())
                .closingChannelConfig(ClosingConfig.builder().quarantineDuration(3600)
                        .misbehaviorFine(BigInteger.ZERO).conditionalCloseDuration(180).build())
                .excessFee(BigInteger.ZERO)
                .build();
        Cell reference = channel.createSignedSemiChannelState(BigInteger.valueOf(seqno), BigInteger.valueOf(sent),
                null, null).getCell();

        SignedSemiChannel signed = ours.sign(new SemiChannelState(id, new SemiChannelBody(seqno, sent)));
        assertThat(signed.boc()).isEqualTo(reference.toBoc());

        SignedSemiChannel parsed = SignedSemiChannel.parse(reference.toBoc());
        assertThat(parsed.state()).isEqualTo(signed.state());
        assertThat(parsed.signedBy(ours.publicKey())).isTrue();
    }

    /**
     * {@code parse} hashes the BOC's bytes after the signature instead of rebuilding the state's
     * cell with ton4j: the signature, made over ton4j's cell hash, must still verify for every
     * length of the amount (0 to 8 bytes, so every position of the completion tag).
     */
    @Test
    void parseHashesExactlyTheCellTheSignerSigned() {
        PaymentKeyPair key = PaymentKeyPair.fromSeed(SEED);
        ChannelId id = ChannelId.fromHex("0123456789abcdef0123456789abcdef");
        for (int bytes = 0; bytes <= 8; bytes++) {
            long sent = bytes == 0 ? 0 : bytes == 8 ? Long.MAX_VALUE : (1L << (8 * bytes - 1)) + 3;
            for (long seqno : new long[] {0, 1, SemiChannelBody.SEQNO_LIMIT - 1}) {
                SemiChannelState state = new SemiChannelState(id, new SemiChannelBody(seqno, sent));
                SignedSemiChannel parsed = SignedSemiChannel.parse(key.sign(state).boc());
                assertThat(parsed.state()).isEqualTo(state);
                assertThat(parsed.signedBy(key.publicKey())).as("seqno %d, sent %d", seqno, sent).isTrue();
            }
        }
    }

    /** What a third party does with the BOC from {@code /status}: parse it with ton4j, check the signature with TweetNaCl. */
    @ParameterizedTest
    @CsvSource({"3, 12345", "17, 0"})
    void thirdPartyVerifiesWithTon4jAlone(long seqno, long sent) {
        PaymentKeyPair key = PaymentKeyPair.fromSeed(SEED);
        ChannelId id = ChannelId.fromHex("00112233445566778899aabbccddeeff");
        String base64 = key.sign(new SemiChannelState(id, new SemiChannelBody(seqno, sent))).bocBase64();

        assertThat(Ton4jVoucherCheck.verify(base64, key.publicKey().toBytes()))
                .isEqualTo(new Ton4jVoucherCheck.Voucher(id.toBigInteger(), seqno, BigInteger.valueOf(sent), true));
        byte[] other = PaymentKeyPair.fromSeed(new byte[32]).publicKey().toBytes();
        assertThat(Ton4jVoucherCheck.verify(base64, other).signatureValid()).isFalse();
    }

    /** Reads a SignedSemiChannel with ton4j only, as any third party could. */
    static final class Ton4jVoucherCheck {
        record Voucher(BigInteger channelId, long seqno, BigInteger sent, boolean signatureValid) {}

        static Voucher verify(String base64Boc, byte[] publicKey) {
            Cell root = Cell.fromBocBase64(base64Boc);
            CellSlice s = CellSlice.beginParse(root);
            byte[] signature = s.loadBytes(512);
            // slice_hash of the remainder = the hash of a cell holding the remaining bits and refs
            Cell remainder = org.ton.ton4j.cell.CellBuilder.beginCell().storeSlice(s).endCell();
            CellSlice r = CellSlice.beginParse(remainder);
            assertThat(r.loadUint(32).longValue()).isEqualTo(0x43685374L);
            BigInteger channelId = r.loadUint(128);
            long seqno = r.loadUint(64).longValueExact();
            BigInteger sent = r.loadCoins();
            boolean valid = new TweetNaclFast.Signature(publicKey, new byte[64]).detached_verify(remainder.hash(), signature);
            return new Voucher(channelId, seqno, sent, valid);
        }
    }
}
