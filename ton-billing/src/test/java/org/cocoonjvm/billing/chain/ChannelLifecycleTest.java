package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.cocoonjvm.billing.chain.TestChain.ton;

import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.ed25519.TorsionForgery;
import org.bouncycastle.math.ec.rfc8032.Ed25519;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.smartcontract.payments.PaymentChannel;
import org.ton.ton4j.smartcontract.types.ChannelState;
import org.ton.ton4j.smartcontract.utils.MsgUtils;
import org.ton.ton4j.utils.Utils;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.zip.CRC32C;

/**
 * The official payment-channel contract on the real emulator, driven through the toncenter API
 * exactly as against a public node: gateway wallet A pays worker wallet B.
 */
class ChannelLifecycleTest {
    private static final BigInteger DEPOSIT = ton("1");
    private static final Duration QUARANTINE = Duration.ofSeconds(60);
    private static final Duration CONDITIONAL_CLOSE = Duration.ofSeconds(30);

    private static LocalChain chain;
    private static ChainClient client;
    private static ChannelCosts costs;
    private static ChainWallet gateway;
    private static ChainWallet worker;

    @BeforeAll
    static void startChain() {
        chain = TestChain.startOrSkip();
        client = chain.client();
        costs = new ChannelCosts(FeeSchedule.read(client));
        gateway = TestChain.wallet(chain, ton("10"));
        worker = TestChain.wallet(chain, ton("10"));
    }

    @AfterAll
    static void stopChain() {
        if (chain != null) chain.close();
    }

    @Test
    void cooperativeCloseAfterSeveralStatesPaysBothSidesToTheNanoton() {
        Pair ch = openChannel();
        assertThat(ch.a.state())
                .isEqualTo(
                        new OnChainState(
                                ChannelStatus.OPEN, DEPOSIT, BigInteger.ZERO, 0, 0, false));

        // The off-chain stream: A raises seqno and cumulative sent; only the last state matters.
        BigInteger sent = BigInteger.ZERO;
        ChannelPayer payer = ch.payer();
        for (int seqno = 1; seqno <= 5; seqno++) {
            sent = sent.add(ton("0.1"));
            payer.pay(sent.longValueExact());
        }
        // The payee bumps its own seqno to 1 in the close (seqno_B = 0 would fail with exit 108).
        CloseTerms close = new CloseTerms(DEPOSIT.subtract(sent), sent, 5, 1);
        byte[] signatureA = ch.a.signClose(close);
        BigInteger gatewayBefore = gateway.balance();
        BigInteger workerBefore = worker.balance();

        ch.b.close(signatureA, close);

        ChainTransaction paidB = newest(worker.address());
        ChainTransaction paidA = newest(gateway.address());
        assertThat(source(paidB)).isEqualTo(ch.a.address());
        assertThat(source(paidA)).isEqualTo(ch.a.address());
        // B's payout loses exactly the forwarding fee priced from config param 25 (pitfall 7).
        BigInteger toB = paidB.inMessage().orElseThrow().valueNanoton();
        assertThat(toB).isEqualTo(sent.subtract(costs.payoutForwardFee()));
        // Each wallet's balance moves by what arrived less the fee its own transaction reports.
        assertThat(worker.balance().subtract(workerBefore))
                .isEqualTo(toB.subtract(paidB.feeNanoton()));
        BigInteger toA = paidA.inMessage().orElseThrow().valueNanoton();
        assertThat(gateway.balance().subtract(gatewayBefore))
                .isEqualTo(toA.subtract(paidA.feeNanoton()));
        // A gets its unspent side plus the unused reserve: the channel keeps nothing.
        assertThat(toA).isGreaterThan(DEPOSIT.subtract(sent));
        assertThat(client.balance(ch.a.address())).isZero();
        assertThat(ch.a.state().status()).isEqualTo(ChannelStatus.UNINITED);
    }

    @Test
    void openIsIdempotent_thePayeeChecksWhatItReads_andAClosedChannelReopens() {
        Pair ch = openChannel();
        BigInteger before = gateway.balance();
        assertThat(ch.a.open(gateway, DEPOSIT).status()).isEqualTo(ChannelStatus.OPEN);
        assertThat(gateway.balance()).isEqualTo(before);  // a second open sends nothing

        ChannelData data = ChannelData.read(client, ch.b.address());
        assertThat(data.requireOpenFor(
                        ch.b.channelId(), ch.keysA.publicKey(), ch.keysB.publicKey(), worker.address()))
                .isEqualTo(DEPOSIT.longValueExact());
        assertThat(data.addressA()).isEqualTo(gateway.address());
        // A channel that would pay someone else, or is signed for by another key, is refused.
        assertThatThrownBy(() -> data.requireOpenFor(
                        ch.b.channelId(), ch.keysA.publicKey(), ch.keysB.publicKey(), gateway.address()))
                .isInstanceOfSatisfying(ChainException.class,
                        e -> assertThat(e.code()).isEqualTo("channel_mismatch"));
        assertThatThrownBy(() -> data.requireOpenFor(
                        ch.b.channelId(), ch.keysB.publicKey(), ch.keysB.publicKey(), worker.address()))
                .hasMessageContaining("payer key");
        // Open already, it is taken at what it holds, whatever the payer would deposit now.
        assertThat(ch.a.open(gateway, DEPOSIT.add(BigInteger.ONE)).balanceA()).isEqualTo(DEPOSIT);
        assertThat(ch.a.open(gateway, DEPOSIT.divide(BigInteger.TWO)).balanceA()).isEqualTo(DEPOSIT);
        assertThat(gateway.balance()).isEqualTo(before);

        // A cooperative close pays B its balance and A all the rest, whatever A's balance says
        // (here 0.5 of the 0.9 left): a payer whose cap changed since it opened closes it as well.
        CloseTerms close = new CloseTerms(ton("0.5"), ton("0.1"), 1, 1);
        ch.b.close(ch.a.signClose(close), close);
        assertThat(ch.a.status()).isEqualTo(ChannelStatus.UNINITED);
        assertThat(newest(worker.address()).inMessage().orElseThrow().valueNanoton())
                .isEqualTo(ton("0.1").subtract(costs.payoutForwardFee()));
        assertThat(newest(gateway.address()).inMessage().orElseThrow().valueNanoton()).isGreaterThan(ton("0.9"));
        // Same id and address after a close: seqnos go on above the committed (1, 1).
        OnChainState reopened = ch.a.open(gateway, DEPOSIT);
        assertThat(reopened.status()).isEqualTo(ChannelStatus.OPEN);
        assertThat(reopened.balanceA()).isEqualTo(DEPOSIT);
        assertThat(reopened.committedSeqnoB()).isEqualTo(1);
    }

    @Test
    void commitNeedsTheCommitOpWhichTon4jsOwnBuilderGetsWrong() {
        Pair ch = openChannel();
        PaymentChannel rawA = OnChainChannel.ton4jContract(ch.a.terms(), true, ch.keysA);
        byte[] signatureB = ch.b.signCommit(2, 1);

        // ton4j 1.3.5's builder sends the close op with a zeroed signature: the contract refuses.
        org.ton.ton4j.smartcontract.payments.Signature buggy =
                rawA.createCooperativeCommit(signatureB, BigInteger.TWO, BigInteger.ONE);
        assertThatThrownBy(
                        () ->
                                client.sendBoc(
                                        MsgUtils.createExternalMessage(
                                                        ch.a.address(), null, buggy.getCell())
                                                .toCell()))
                .isInstanceOfSatisfying(
                        ChainException.Rejected.class,
                        e -> assertThat(e.exitCode()).isEqualTo(104));

        ch.a.commit(signatureB, 2, 1);
        assertThat(gasOfNewest(ch.a.address(), "commit (external)"))
                .isLessThanOrEqualTo(ChannelCosts.COMMIT_GAS);
        OnChainState committed = ch.a.state();
        assertThat(committed.committedSeqnoA()).isEqualTo(2);
        assertThat(committed.committedSeqnoB()).isEqualTo(1);
        assertThat(committed.balanceA()).isEqualTo(DEPOSIT);

        // Committing the same seqnos again is refused before anything is sent.
        assertThatThrownBy(() -> ch.a.commit(ch.b.signCommit(2, 1), 2, 1))
                .isInstanceOfSatisfying(
                        ChainException.class,
                        e -> assertThat(e.code()).isEqualTo("seqno_not_above_committed"));
    }

    @Test
    void cooperativeCloseWithPayeeSeqnoZeroFailsWithExit108() {
        Pair ch = openChannel();
        CloseTerms close = new CloseTerms(ton("0.9"), ton("0.1"), 1, 0);
        byte[] signatureA = ch.a.signClose(close);

        // Our handle refuses it up front ...
        assertThatThrownBy(() -> ch.b.close(signatureA, close))
                .isInstanceOfSatisfying(
                        ChainException.class,
                        e -> assertThat(e.code()).isEqualTo("seqno_not_above_committed"));

        // ... because the contract does: committed seqno_B is 0 and must be strictly exceeded.
        PaymentChannel rawB = OnChainChannel.ton4jContract(ch.b.terms(), false, ch.keysB);
        org.ton.ton4j.cell.Cell message =
                rawB.createCooperativeCloseChannel(
                                signatureA,
                                ChannelState.builder()
                                        .balanceA(close.balanceA())
                                        .balanceB(close.balanceB())
                                        .seqnoA(BigInteger.ONE)
                                        .seqnoB(BigInteger.ZERO)
                                        .build())
                        .getCell();
        assertThatThrownBy(
                        () ->
                                client.sendBoc(
                                        MsgUtils.createExternalMessage(
                                                        ch.a.address(), null, message)
                                                .toCell()))
                .isInstanceOfSatisfying(
                        ChainException.Rejected.class,
                        e -> assertThat(e.exitCode()).isEqualTo(108));
        assertThat(ch.a.state().status()).isEqualTo(ChannelStatus.OPEN);
    }

    @Test
    void uncooperativeCloseIsChallengedWithTheLatestStateAndFinishedAfterQuarantine() {
        Pair ch = openChannel();
        // At open the payee hands the payer a signed initial state, so A can always force-close.
        SignedSemiChannel stateB =
                ch.keysB.sign(new SemiChannelState(ch.b.channelId(), SemiChannelBody.INITIAL));
        ChannelPayer payer = ch.payer();
        SignedSemiChannel stateA1 = payer.pay(ton("0.1").longValueExact());
        payer.pay(ton("0.2").longValueExact());
        SignedSemiChannel stateA3 = payer.pay(ton("0.3").longValueExact());

        // A cheats: it starts the close with an old state that sent less.
        ch.a.startUncooperativeClose(gateway, stateA1, stateB);
        assertThat(gasOfNewest(ch.a.address(), "start_uncooperative_close"))
                .isLessThanOrEqualTo(ChannelCosts.START_UNCOOPERATIVE_GAS);
        assertThat(ch.a.state().status()).isEqualTo(ChannelStatus.CLOSURE_STARTED);
        assertThat(ch.a.state().quarantined()).isTrue();
        // What B watches for: a close it did not start, with less than A last signed.
        QuarantinedState started = ChannelData.read(client, ch.a.address()).quarantined().orElseThrow();
        assertThat(started)
                .isEqualTo(new QuarantinedState(1, ton("0.1"), 0, BigInteger.ZERO, started.startedAt(), true, false));
        assertThat(started.startedAt()).isBetween(chain.clock().instant().minusSeconds(60), chain.clock().instant());

        // B answers with A's latest signed state; the fine is 0, so nothing more is taken from A.
        chain.advanceTime(Duration.ofSeconds(10));
        ch.b.challenge(worker, stateA3, stateB);
        assertThat(gasOfNewest(ch.a.address(), "challenge_quarantined_state"))
                .isLessThanOrEqualTo(ChannelCosts.CHALLENGE_GAS);
        QuarantinedState challenged = ChannelData.read(client, ch.a.address()).quarantined().orElseThrow();
        assertThat(challenged)
                .isEqualTo(new QuarantinedState(3, ton("0.3"), 0, BigInteger.ZERO, challenged.startedAt(), false, true));
        // The answer does not start the quarantine again: B had to be in time, A now is too late.
        assertThat(challenged.startedAt()).isEqualTo(started.startedAt());
        assertThat(ChannelData.read(client, ch.a.address()).status()).isEqualTo(ChannelStatus.CLOSURE_STARTED);

        assertThatThrownBy(ch.b::finish)
                .isInstanceOfSatisfying(
                        ChainException.Rejected.class,
                        e -> assertThat(e.exitCode()).isEqualTo(113));

        chain.advanceTime(QUARANTINE.plus(CONDITIONAL_CLOSE).plusSeconds(1));
        BigInteger workerBefore = worker.balance();
        ch.b.finish();
        assertThat(gasOfNewest(ch.a.address(), "finish_uncooperative_close (external)"))
                .isLessThanOrEqualTo(ChannelCosts.FINISH_GAS);

        ChainTransaction paidB = newest(worker.address());
        assertThat(source(paidB)).isEqualTo(ch.a.address());
        BigInteger toB = paidB.inMessage().orElseThrow().valueNanoton();
        assertThat(toB).isEqualTo(ton("0.3").subtract(costs.payoutForwardFee()));
        assertThat(worker.balance().subtract(workerBefore))
                .isEqualTo(toB.subtract(paidB.feeNanoton()));
        assertThat(ch.a.state().status()).isEqualTo(ChannelStatus.UNINITED);
    }

    /**
     * Whoever holds A's key can sign a new state with a higher seqno than any it sent and less in
     * it, and start the close with that. The contract takes B's answer with a state that sent more,
     * though its seqno is lower, and pays that (audit Z, Z-1): so the payee answers by the amount,
     * not by the seqno.
     */
    @Test
    void aCloseWithAForgedHigherSeqnoAndLessSent_isAnsweredWithTheStateThatSentMore() {
        Pair ch = openChannel();
        SignedSemiChannel stateB = ch.keysB.sign(new SemiChannelState(ch.b.channelId(), SemiChannelBody.INITIAL));
        ChannelPayer payer = ch.payer();
        payer.pay(ton("0.1").longValueExact());
        SignedSemiChannel latest = payer.pay(ton("0.3").longValueExact());
        SignedSemiChannel forged = ch.keysA.sign(new SemiChannelState(ch.b.channelId(),
                new SemiChannelBody(50, ton("0.01").longValueExact())));

        ch.a.startUncooperativeClose(gateway, forged, stateB);
        assertThat(ChannelData.read(client, ch.a.address()).quarantined().orElseThrow().seqnoA()).isEqualTo(50);
        ch.b.challenge(worker, latest, stateB);

        QuarantinedState answered = ChannelData.read(client, ch.a.address()).quarantined().orElseThrow();
        assertThat(answered.seqnoA()).isEqualTo(2);
        assertThat(answered.sentA()).isEqualTo(ton("0.3"));
        assertThat(answered.challenged()).isTrue();
    }

    /**
     * The rule {@code FixedKeyEd25519} keeps, on the real contract: a state signed by A with R
     * shifted by a torsion point passes BouncyCastle's (cofactored) verify, but the contract's
     * signature check refuses it (exit 101), as our verifier does. The same call with A's genuine
     * state starts the close.
     */
    @Test
    void theContractRefusesAStateThatOnlyACofactoredVerifyAccepts() {
        Pair ch = openChannel();
        SignedSemiChannel stateB =
                ch.keysB.sign(new SemiChannelState(ch.b.channelId(), SemiChannelBody.INITIAL));
        SignedSemiChannel genuine = ch.payer().pay(ton("0.1").longValueExact());
        byte[] hash = genuine.state().toCell().hash();
        SignedSemiChannel forged = withSignature(genuine, TorsionForgery.sign(ch.keysA.seed(), hash, 1));
        assertThat(Ed25519.verify(forged.signature(), 0, ch.keysA.publicKey().toBytes(), 0, hash, 0, hash.length))
                .as("BouncyCastle 1.86 accepts it").isTrue();
        assertThat(forged.signedBy(ch.keysA.publicKey())).isFalse();
        assertThatThrownBy(() -> ch.a.startUncooperativeClose(gateway, forged, stateB))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("is not signed by party A");

        // Past our check, straight to the contract.
        PaymentChannel rawA = OnChainChannel.ton4jContract(ch.a.terms(), true, ch.keysA);
        BigInteger value = costs.callValue(ChannelCosts.START_UNCOOPERATIVE_GAS);
        gateway.call(ch.a.address(), value, rawA.createStartUncooperativeClose(
                Cell.fromBoc(forged.boc()), Cell.fromBoc(stateB.boc())).getCell(), null);
        assertThat(newest(ch.a.address()).phases().orElseThrow().computeExitCode())
                .as("101, not authorized: the signature check").isEqualTo(101);
        assertThat(ch.a.state().status()).isEqualTo(ChannelStatus.OPEN);

        gateway.call(ch.a.address(), value, rawA.createStartUncooperativeClose(
                Cell.fromBoc(genuine.boc()), Cell.fromBoc(stateB.boc())).getCell(), null);
        assertThat(newest(ch.a.address()).phases().orElseThrow().computeExitCode()).isZero();
        assertThat(ch.a.state().status()).isEqualTo(ChannelStatus.CLOSURE_STARTED);
    }

    /** {@code state}'s BOC with another signature (and its CRC32C recomputed), parsed back. */
    private static SignedSemiChannel withSignature(SignedSemiChannel state, byte[] signature) {
        byte[] boc = state.boc();
        System.arraycopy(signature, 0, boc, 13, 64);  // 11 header bytes, then the cell's d1 and d2
        CRC32C crc = new CRC32C();
        crc.update(boc, 0, boc.length - 4);
        ByteBuffer.wrap(boc, boc.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) crc.getValue());
        return SignedSemiChannel.parse(boc);
    }

    @Test
    void eachStepBurnsNoMoreGasThanItIsSizedFor() {
        Pair ch = openChannel();
        CloseTerms close = new CloseTerms(ton("0.5"), ton("0.5"), 1, 1);
        ch.b.close(ch.a.signClose(close), close);

        List<ChainTransaction> txs = client.transactions(ch.a.address(), 10, Optional.empty());
        // Newest first: close (external), init, deploy + top-up.
        String[] steps = {"cooperative_close (external)", "init_channel", "deploy + top_up"};
        long[] sizedFor = {ChannelCosts.CLOSE_GAS, ChannelCosts.INIT_GAS, ChannelCosts.TOP_UP_GAS};
        for (int i = 0; i < steps.length; i++) {
            ChainTransaction tx = txs.get(i);
            long gas = tx.phases().orElseThrow().gasUsed();
            System.out.printf("gas: %s %d, fee %s nanoTON%n", steps[i], gas, tx.feeNanoton());
            assertThat(gas).isPositive().isLessThanOrEqualTo(sizedFor[i]);
        }
        // The external close is paid from the reserve A and B agreed on.
        assertThat(txs.get(0).feeNanoton()).isLessThanOrEqualTo(ch.a.terms().excessFee());
    }

    /** A payer's wallet that cannot cover the deposit sends nothing, so a worker asking again and again costs it no fees. */
    @Test
    void aPayerWhoseWalletCannotCoverTheDeposit_sendsNothing_andSaysSo() {
        ChainWallet poor = TestChain.wallet(chain, ton("0.5"));
        PaymentKeyPair keysA = PaymentKeyPair.generate(new SecureRandom());
        ChannelTerms terms = new ChannelTerms(BigInteger.valueOf(ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE)),
                poor.address(), worker.address(), keysA.publicKey().toBytes(),
                PaymentKeyPair.generate(new SecureRandom()).publicKey().toBytes(), costs.excessFee(), QUARANTINE, CONDITIONAL_CLOSE);
        OnChainChannel a = OnChainChannel.asA(terms, keysA, client, costs);
        BigInteger before = poor.balance();

        for (int attempt = 0; attempt < 3; attempt++) {
            assertThatThrownBy(() -> a.open(poor, DEPOSIT)).isInstanceOfSatisfying(ChainException.class, e -> {
                assertThat(e.code()).isEqualTo("wallet_underfunded");
                assertThat(e.getMessage()).contains(poor.address().toBounceable()).contains("send it TON");
            });
        }
        assertThat(poor.balance()).isEqualTo(before);
    }

    private record Pair(
            OnChainChannel a, OnChainChannel b, PaymentKeyPair keysA, PaymentKeyPair keysB) {
        /** A's off-chain side of the channel, as the gateway runs it. */
        ChannelPayer payer() {
            return new ChannelPayer(
                    new org.cocoonjvm.billing.channel.ChannelTerms(
                            a.channelId(), keysA.publicKey(), DEPOSIT.longValueExact()),
                    keysA,
                    SemiChannelBody.INITIAL);
        }
    }

    /**
     * A fresh channel (new keys and id) with {@link #DEPOSIT} on A's side, deployed and opened by
     * A.
     */
    private static Pair openChannel() {
        PaymentKeyPair keysA = PaymentKeyPair.generate(new SecureRandom());
        PaymentKeyPair keysB = PaymentKeyPair.generate(new SecureRandom());
        ChannelTerms terms =
                new ChannelTerms(
                        BigInteger.valueOf(ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE)),
                        gateway.address(),
                        worker.address(),
                        keysA.publicKey().toBytes(),
                        keysB.publicKey().toBytes(),
                        costs.excessFee(),
                        QUARANTINE,
                        CONDITIONAL_CLOSE);
        OnChainChannel a = OnChainChannel.asA(terms, keysA, client, costs);
        OnChainChannel b = OnChainChannel.asB(terms, keysB, client, costs);
        a.open(gateway, DEPOSIT);
        return new Pair(a, b, keysA, keysB);
    }

    /**
     * The gas of the account's newest transaction, printed for the fee table in
     * ton-billing/README.md.
     */
    private static long gasOfNewest(Address account, String step) {
        ChainTransaction tx = newest(account);
        long gas = tx.phases().orElseThrow().gasUsed();
        System.out.printf("gas: %s %d, fee %s nanoTON%n", step, gas, tx.feeNanoton());
        return gas;
    }

    private static ChainTransaction newest(Address account) {
        return client.transactions(account, 1, Optional.empty()).getFirst();
    }

    private static Address source(ChainTransaction tx) {
        return Address.of(tx.inMessage().orElseThrow().source());
    }
}
