package org.cocoonjvm.billing.chain;

import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.smartcontract.payments.ClosingConfig;
import org.ton.ton4j.smartcontract.payments.PaymentChannel;
import org.ton.ton4j.smartcontract.payments.PaymentsUtils;
import org.ton.ton4j.smartcontract.types.ChannelConfig;
import org.ton.ton4j.smartcontract.types.ChannelState;
import org.ton.ton4j.smartcontract.utils.MsgUtils;
import org.ton.ton4j.utils.Utils;

import java.math.BigInteger;
import java.util.Arrays;

/**
 * One party's handle on one payment channel deployed from the official contract (code hash
 * 41f5b77f…, ton4j's {@code WalletCodes.payments}). It builds and sends every on-chain step of the
 * lifecycle; the off-chain stream of signed states between the steps is not its business: states
 * are signed with the shared voucher codec ({@code PaymentKeyPair}, {@code ChannelPayer}) and come
 * here only as the {@link SignedSemiChannel}s an uncooperative close submits.
 *
 * <p>Close, commit and finish go out as external messages: the contract pays their gas from its
 * reserve, and from a wallet the attached value would end up with A. Start, challenge and init burn
 * more than the 10k gas credit an external gets, so they come from the party's wallet.
 */
public final class OnChainChannel {
    private static final long MAX_SEQNO = 0xFFFFFFFFL;

    private final ChannelTerms terms;
    private final PaymentChannel contract;
    private final ChainClient chain;
    private final ChannelCosts costs;

    private OnChainChannel(
            ChannelTerms terms,
            boolean isA,
            PaymentKeyPair mine,
            ChainClient chain,
            ChannelCosts costs) {
        byte[] myKey = isA ? terms.publicKeyA() : terms.publicKeyB();
        if (!Arrays.equals(myKey, mine.publicKey().toBytes())) {
            throw new IllegalArgumentException(
                    "key pair is not party " + (isA ? "A" : "B") + "'s key in the terms");
        }
        this.terms = terms;
        this.chain = chain;
        this.costs = costs;
        this.contract = ton4jContract(terms, isA, mine);
    }

    /**
     * ton4j's view of the channel from one party's side: the terms fix the contract's address, so
     * both parties' handles (and a test's raw ton4j client) must build it from exactly these
     * values.
     */
    static PaymentChannel ton4jContract(
            ChannelTerms terms, boolean isA, PaymentKeyPair mine) {
        return PaymentChannel.builder()
                .isA(isA)
                // ton4j still signs the two-signature close and commit bodies
                .myKeyPair(Utils.generateSignatureKeyPairFromSeed(mine.seed()))
                .hisPublicKey(isA ? terms.publicKeyB() : terms.publicKeyA())
                .excessFee(terms.excessFee())
                .channelConfig(
                        ChannelConfig.builder()
                                .channelId(terms.channelId())
                                .addressA(terms.addressA())
                                .addressB(terms.addressB())
                                .initBalanceA(BigInteger.ZERO)
                                .initBalanceB(BigInteger.ZERO)
                                .build())
                .closingChannelConfig(
                        ClosingConfig.builder()
                                .quarantineDuration(terms.quarantine().toSeconds())
                                .misbehaviorFine(BigInteger.ZERO)
                                .conditionalCloseDuration(terms.conditionalClose().toSeconds())
                                .build())
                .build();
    }

    /** The payer's (gateway's) handle. */
    public static OnChainChannel asA(
            ChannelTerms terms,
            PaymentKeyPair keysA,
            ChainClient chain,
            ChannelCosts costs) {
        return new OnChainChannel(terms, true, keysA, chain, costs);
    }

    /** The payee's (worker's) handle. */
    public static OnChainChannel asB(
            ChannelTerms terms,
            PaymentKeyPair keysB,
            ChainClient chain,
            ChannelCosts costs) {
        return new OnChainChannel(terms, false, keysB, chain, costs);
    }

    /**
     * The payee's handle on the contract at {@code address}, from what the contract itself says.
     *
     * @throws ChainException {@code channel_mismatch} unless those terms derive that address (the
     *     contract has a fine or other terms this code does not sign for)
     */
    public static OnChainChannel at(
            Address address, PaymentKeyPair keysB, ChainClient chain, ChannelCosts costs) {
        OnChainChannel b = asB(ChannelData.read(chain, address).terms(), keysB, chain, costs);
        if (!b.address().toRaw().equals(address.toRaw())) {
            throw new ChainException(
                    "channel_mismatch",
                    "the terms read from " + address.toRaw() + " derive " + b.address().toRaw());
        }
        return b;
    }

    public Address address() {
        return contract.getAddress();
    }

    public ChannelTerms terms() {
        return terms;
    }

    /**
     * A deploys the contract and puts {@code deposit} on its side, in one message from its wallet.
     *
     * @throws ChainException {@code wallet_underfunded} when the wallet holds less than that
     *     message carries: sent anyway, the wallet would pay its fees and the transfer would fail,
     *     on every retry of a worker that keeps asking for its channel
     */
    public void deployAndTopUp(ChainWallet walletA, BigInteger deposit) {
        requireA("deploy and top up");
        BigInteger value = costs.deployValue(deposit, terms.excessFee());
        BigInteger held = walletA.balance();
        if (held.compareTo(value) <= 0) {
            throw new ChainException("wallet_underfunded", "the payer's wallet " + walletA.address().toBounceable()
                    + " holds " + held + " nanoTON; opening this channel sends " + value + " nanoTON (the deposit of "
                    + deposit + ", the contract's reserve and its gas) plus the wallet's own fees: send it TON");
        }
        walletA.call(
                address(),
                value,
                PaymentsUtils.createTopUpBalance(deposit, BigInteger.ZERO),
                contract.getStateInit());
    }

    /**
     * Brings the channel to OPEN with {@code deposit} on A's side, doing only the steps not yet
     * done: a restarted gateway, or a reopen after a close, must not pay twice for a deploy or
     * top-up that already landed. A channel OPEN already is taken as it is: it holds what it was
     * opened with (A's balance, no top-up possible), which is its cap whatever {@code deposit}
     * is now, and a cooperative close must pay out exactly that.
     *
     * @return the channel's on-chain state, OPEN; its {@code balanceA} is the channel's deposit
     * @throws ChainException {@code channel_closing} while a close is in progress, {@code
     *     channel_underfunded} when the deposit it was just opened with falls short
     */
    public OnChainState open(ChainWallet walletA, BigInteger deposit) {
        requireA("open");
        if ("active".equals(chain.state(address()))) {
            ChannelStatus status = status();
            if (status == ChannelStatus.OPEN) {
                return state();
            }
            if (status != ChannelStatus.UNINITED) {
                throw new ChainException(
                        "channel_closing",
                        "channel " + address().toBounceable() + " is " + status + "; wait for its close");
            }
            if (state().balanceA().compareTo(deposit) < 0) {
                deployAndTopUp(walletA, deposit.subtract(state().balanceA()));
            }
        } else {
            deployAndTopUp(walletA, deposit);
        }
        init(walletA, state().balanceA(), BigInteger.ZERO);
        OnChainState opened = state();
        if (opened.status() != ChannelStatus.OPEN) {
            throw new ChainException(
                    "channel_not_open",
                    "channel " + address().toBounceable() + " is " + opened.status() + " after init");
        }
        return requireDeposit(opened, deposit);
    }

    /** {@code get_channel_state}: cheaper than the whole data when only the phase matters. */
    public ChannelStatus status() {
        ChainClient.GetMethodResult r = chain.runGetMethod(address(), "get_channel_state");
        if (r.exitCode() != 0) {
            throw new ChainException(
                    "channel_unreadable",
                    "get_channel_state on " + address().toBounceable() + ": exit " + r.exitCode());
        }
        return ChannelStatus.of(r.num(0).intValueExact());
    }

    private OnChainState requireDeposit(OnChainState open, BigInteger deposit) {
        if (open.balanceA().compareTo(deposit) < 0) {
            throw new ChainException(
                    "channel_underfunded",
                    "channel " + address().toBounceable() + " holds " + open.balanceA()
                            + " nanoTON for A after its open, less than the " + deposit + " topped up: a top-up did not"
                            + " land; it is open now, and the next open takes it at what it holds");
        }
        return open;
    }

    /** Opens the channel with the topped-up balances; no top-up is possible after this. */
    public void init(ChainWallet mine, BigInteger balanceA, BigInteger balanceB) {
        callFrom(mine, ChannelCosts.INIT_GAS, contract.createInitChannel(balanceA, balanceB));
    }

    /** This party's signature for a cooperative commit of both seqnos. */
    public byte[] signCommit(long seqnoA, long seqnoB) {
        return commitMessage(new byte[64], seqnoA, seqnoB).getSignature();
    }

    /**
     * Commits both seqnos on chain without moving money. Built by hand: ton4j 1.3.5's {@code
     * createCooperativeCommit} uses the close op and zeroes the other signature (exit 104).
     */
    public void commit(byte[] hisSignature, long seqnoA, long seqnoB) {
        requireAboveCommitted(seqnoA, seqnoB);
        sendExternal(commitMessage(hisSignature, seqnoA, seqnoB).getCell());
    }

    public byte[] signClose(CloseTerms close) {
        return contract.createCooperativeCloseChannel(new byte[64], channelState(close))
                .getSignature();
    }

    /**
     * Pays B {@code balanceB} (less the forwarding fee) and A everything else; the channel resets
     * to uninited.
     *
     * @return the hash (base64) of the external message sent: an explorer finds the close by it
     */
    public String close(byte[] hisSignature, CloseTerms close) {
        requireAboveCommitted(close.seqnoA(), close.seqnoB());
        return sendExternal(
                contract.createCooperativeCloseChannel(hisSignature, channelState(close))
                        .getCell());
    }

    /**
     * Submits both parties' latest signed states; the quarantine starts. A's state pays B; B's is
     * its signed initial state (a one-way channel's B never signs another).
     *
     * @throws IllegalArgumentException for a state of another channel or not signed by its party
     *     (the contract would refuse it with exit 114 or 110 and keep the call's value)
     */
    public void startUncooperativeClose(
            ChainWallet mine, SignedSemiChannel stateA, SignedSemiChannel stateB) {
        callFrom(
                mine,
                ChannelCosts.START_UNCOOPERATIVE_GAS,
                contract.createStartUncooperativeClose(cellOf(stateA, true), cellOf(stateB, false))
                        .getCell());
    }

    /**
     * The counterparty of whoever started the close replaces the quarantined states with newer
     * ones, once. The worker's answer to a close started with the gateway's key and an old state
     * (WorkerPayments.watchChain); the gateway never sends it: only a worker starts an
     * uncooperative close, with the gateway's latest state, so there is nothing newer to answer
     * with. ChannelLifecycleTest measures {@link ChannelCosts#CHALLENGE_GAS}.
     */
    public void challenge(ChainWallet mine, SignedSemiChannel stateA, SignedSemiChannel stateB) {
        callFrom(
                mine,
                ChannelCosts.CHALLENGE_GAS,
                contract.createChallengeQuarantinedState(cellOf(stateA, true), cellOf(stateB, false))
                        .getCell());
    }

    /** The terms' channel id in the voucher codec's type. */
    public ChannelId channelId() {
        return ChannelId.fromBytes(ChannelData.uint(terms.channelId(), ChannelId.BYTES));
    }

    /**
     * After quarantine and conditional-close time: pays out by the quarantined cumulative {@code
     * sent}s.
     *
     * @return the hash (base64) of the external message sent, as {@link #close}
     */
    public String finish() {
        return sendExternal(contract.createFinishUncooperativeClose());
    }

    public OnChainState state() {
        ChainClient.GetMethodResult r = chain.runGetMethod(address(), "get_channel_data");
        if (r.exitCode() != 0) {
            throw new ChainException(
                    "channel_unreadable",
                    "get_channel_data on " + address().toBounceable() + ": exit " + r.exitCode());
        }
        return new OnChainState(
                ChannelStatus.of(r.num(0).intValueExact()),
                r.tupleNum(1, 0),
                r.tupleNum(1, 1),
                r.tupleNum(5, 0).longValueExact(),
                r.tupleNum(5, 1).longValueExact(),
                !r.isNull(6));
    }

    private Cell cellOf(SignedSemiChannel state, boolean ofA) {
        if (!state.channelId().equals(channelId())) {
            throw new IllegalArgumentException(
                    "state of channel " + state.channelId() + ", not " + channelId());
        }
        PaymentPublicKey signer =
                PaymentPublicKey.of(ofA ? terms.publicKeyA() : terms.publicKeyB());
        if (!state.signedBy(signer)) {
            throw new IllegalArgumentException(
                    state + " is not signed by party " + (ofA ? "A" : "B"));
        }
        checkSeqno(state.seqno());
        return Cell.fromBoc(state.boc());
    }

    static void checkSeqno(long seqno) {
        if (seqno < 0 || seqno > MAX_SEQNO) {
            throw new IllegalArgumentException(
                    "seqno must fit the contract's uint32 storage: " + seqno);
        }
    }

    private org.ton.ton4j.smartcontract.payments.Signature commitMessage(
            byte[] hisSignature, long seqnoA, long seqnoB) {
        checkSeqno(seqnoA);
        checkSeqno(seqnoB);
        return contract.createTwoSignature(
                PaymentsUtils.op_cooperative_commit,
                hisSignature,
                PaymentsUtils.createCooperativeCommitBody(
                        terms.channelId(), BigInteger.valueOf(seqnoA), BigInteger.valueOf(seqnoB)));
    }

    private void requireAboveCommitted(long seqnoA, long seqnoB) {
        OnChainState onChain = state();
        if (onChain.status() != ChannelStatus.OPEN) {
            throw new ChainException(
                    "channel_not_open",
                    "channel " + address().toBounceable() + " is " + onChain.status());
        }
        if (seqnoA <= onChain.committedSeqnoA() || seqnoB <= onChain.committedSeqnoB()) {
            throw new ChainException(
                    "seqno_not_above_committed",
                    "both seqnos must exceed the committed ones ("
                            + onChain.committedSeqnoA()
                            + ", "
                            + onChain.committedSeqnoB()
                            + "), got ("
                            + seqnoA
                            + ", "
                            + seqnoB
                            + "); the contract would refuse with exit 108");
        }
    }

    private static ChannelState channelState(CloseTerms close) {
        return ChannelState.builder()
                .balanceA(close.balanceA())
                .balanceB(close.balanceB())
                .seqnoA(BigInteger.valueOf(close.seqnoA()))
                .seqnoB(BigInteger.valueOf(close.seqnoB()))
                .build();
    }

    private void requireA(String what) {
        if (!contract.isA()) throw new IllegalStateException(what + " is party A's step");
    }

    /** An internal message from a party's wallet carrying enough value for {@code gas}. */
    private void callFrom(ChainWallet wallet, long gas, Cell body) {
        wallet.call(address(), costs.callValue(gas), body, null);
    }

    private String sendExternal(Cell body) {
        return chain.sendBoc(MsgUtils.createExternalMessage(address(), null, body).toCell());
    }
}
