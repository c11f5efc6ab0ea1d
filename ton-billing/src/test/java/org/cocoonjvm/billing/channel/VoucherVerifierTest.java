package org.cocoonjvm.billing.channel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.security.SecureRandom;
import org.cocoonjvm.billing.channel.VoucherException.Reason;
import org.cocoonjvm.billing.ed25519.TorsionForgery;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.ton.ton4j.cell.CellBuilder;

class VoucherVerifierTest {
    private static final SecureRandom RANDOM = new SecureRandom();
    private final PaymentKeyPair gateway = PaymentKeyPair.generate(RANDOM);
    private final ChannelId id = ChannelId.random(RANDOM);
    private final ChannelTerms terms = new ChannelTerms(id, gateway.publicKey(), 1_000_000);
    private final ChannelPayer payer = new ChannelPayer(terms, gateway, SemiChannelBody.INITIAL);

    @Test
    void acceptsEachNextStateOfThePayer() {
        SignedSemiChannel previous = null;
        for (long sent : new long[] {0, 10, 10, 999_999, 1_000_000}) {
            SignedSemiChannel next = payer.pay(sent);
            previous = VoucherVerifier.accept(terms, previous, next.boc());
            assertThat(previous.sentNanoton()).isEqualTo(sent);
        }
        assertThat(previous.seqno()).isEqualTo(5);
    }

    @Test
    void rejectsAStateSignedByAnotherKey() {
        PaymentKeyPair impostor = PaymentKeyPair.generate(RANDOM);
        SignedSemiChannel forged = impostor.sign(new SemiChannelState(id, new SemiChannelBody(1, 5)));
        assertRejected(null, forged.boc(), Reason.BAD_SIGNATURE);
    }

    @Test
    void rejectsATamperedState() {
        SignedSemiChannel genuine = payer.pay(5);
        // Same signature, larger amount: the payee must not be able to raise what it is owed.
        byte[] tampered = CellBuilder.beginCell().storeBytes(genuine.signature())
                .storeCell(new SemiChannelState(id, new SemiChannelBody(1, 500)).toCell()).endCell().toBoc();
        assertRejected(null, tampered, Reason.BAD_SIGNATURE);
    }

    /**
     * Signed by the payer's own key, but with R shifted by a torsion point: BouncyCastle's verify
     * (cofactored) would take it, the contract refuses it (ChannelLifecycleTest), and so must the
     * payee, for every torsion point, before and after the key's table is built.
     */
    @Test
    void rejectsAStateThatOnlyACofactoredVerifyAccepts() {
        SemiChannelState state = new SemiChannelState(id, new SemiChannelBody(1, 5));
        byte[] hash = state.toCell().hash();
        for (int torsion = 1; torsion < 8; torsion++) {
            byte[] forged = CellBuilder.beginCell().storeBytes(TorsionForgery.sign(gateway.seed(), hash, torsion))
                    .storeCell(state.toCell()).endCell().toBoc();
            assertRejected(null, forged, Reason.BAD_SIGNATURE);
        }
        assertThat(VoucherVerifier.accept(terms, null, gateway.sign(state).boc()).sentNanoton()).isEqualTo(5);
    }

    @Test
    void rejectsAnotherChannelsState() {
        ChannelPayer other = new ChannelPayer(new ChannelTerms(ChannelId.random(RANDOM), gateway.publicKey(), 1_000_000),
                gateway, SemiChannelBody.INITIAL);
        assertRejected(null, other.pay(1).boc(), Reason.WRONG_CHANNEL);
    }

    @Test
    void rejectsAReplayOrAnOlderSeqno() {
        SignedSemiChannel first = payer.pay(1);
        SignedSemiChannel second = payer.pay(2);
        assertRejected(second, second.boc(), Reason.SEQNO_NOT_INCREASING);
        assertRejected(second, first.boc(), Reason.SEQNO_NOT_INCREASING);
    }

    @Test
    void rejectsADecreasingAmount() {
        SignedSemiChannel accepted = gateway.sign(new SemiChannelState(id, new SemiChannelBody(3, 100)));
        SignedSemiChannel lower = gateway.sign(new SemiChannelState(id, new SemiChannelBody(4, 99)));
        assertRejected(accepted, lower.boc(), Reason.SENT_DECREASING);
    }

    @Test
    void rejectsMoreThanTheDeposit() {
        SignedSemiChannel tooMuch = gateway.sign(new SemiChannelState(id, new SemiChannelBody(1, 1_000_001)));
        assertRejected(null, tooMuch.boc(), Reason.ABOVE_DEPOSIT);
        assertThatThrownBy(() -> payer.pay(1_000_001)).isInstanceOfSatisfying(VoucherException.class,
                e -> assertThat(e.reason()).isEqualTo(Reason.ABOVE_DEPOSIT));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "00", "b5ee9c72", "b5ee9c7241010101000300000100"})
    void rejectsBytesThatAreNoState(String hex) {
        assertRejected(null, java.util.HexFormat.of().parseHex(hex), Reason.MALFORMED);
    }

    @Test
    void rejectsAStateWithTheWrongTagOrTrailingData() {
        SignedSemiChannel genuine = payer.pay(5);
        byte[] wrongTag = CellBuilder.beginCell().storeBytes(genuine.signature()).storeUint(0x696e6974L, 32)
                .storeUint(id.toBigInteger(), 128).endCell().toBoc();
        assertRejected(null, wrongTag, Reason.MALFORMED);
        byte[] trailing = CellBuilder.beginCell().storeBytes(genuine.signature())
                .storeCell(genuine.state().toCell()).storeUint(1, 8).endCell().toBoc();
        assertRejected(null, trailing, Reason.MALFORMED);
    }

    @Test
    void rejectsAnAmountNotInItsShortestForm() {
        SignedSemiChannel genuine = payer.pay(5);
        byte[] padded = CellBuilder.beginCell().storeBytes(genuine.signature())
                .storeUint(SemiChannelState.TAG, 32).storeUint(id.toBigInteger(), 128)
                .storeUint(1, 64).storeUint(2, 4).storeUint(5, 16).storeBit(false).storeBit(false).endCell().toBoc();
        assertRejected(null, padded, Reason.MALFORMED);
    }

    @Test
    void rejectsACorruptedBoc() {
        byte[] boc = payer.pay(5).boc();
        boc[boc.length - 1] ^= 1;  // the CRC32C
        assertRejected(null, boc, Reason.MALFORMED);
    }

    @Test
    void rejectsConditionalPayments() {
        SignedSemiChannel genuine = payer.pay(5);
        byte[] withConditionals = CellBuilder.beginCell().storeBytes(genuine.signature())
                .storeUint(SemiChannelState.TAG, 32).storeUint(id.toBigInteger(), 128)
                .storeUint(1, 64).storeCoins(java.math.BigInteger.valueOf(5))
                .storeRefMaybe(CellBuilder.beginCell().endCell()).storeBit(false).endCell().toBoc();
        assertRejected(null, withConditionals, Reason.MALFORMED);
    }

    @Test
    void payerRefusesToLowerTheAmount() {
        payer.pay(10);
        assertThatThrownBy(() -> payer.pay(9)).isInstanceOfSatisfying(VoucherException.class,
                e -> assertThat(e.reason()).isEqualTo(Reason.SENT_DECREASING));
        assertThat(payer.last()).isEqualTo(new SemiChannelBody(1, 10));
    }

    @Test
    void seqnosStayBelowTwoToThe32() {
        ChannelPayer nearTheEnd = new ChannelPayer(terms, gateway, new SemiChannelBody(SemiChannelBody.SEQNO_LIMIT - 2, 0));
        assertThat(nearTheEnd.pay(1).seqno()).isEqualTo((1L << 32) - 2);
        assertThatThrownBy(() -> nearTheEnd.pay(2)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> new SemiChannelBody(1L << 32, 0)).isInstanceOf(IllegalArgumentException.class);
    }

    private void assertRejected(SignedSemiChannel previous, byte[] boc, Reason reason) {
        assertThatThrownBy(() -> VoucherVerifier.accept(terms, previous, boc))
                .isInstanceOfSatisfying(VoucherException.class, e -> assertThat(e.reason()).isEqualTo(reason));
    }
}
