package org.cocoonjvm.billing.chain;

import java.math.BigInteger;

/**
 * What each step of a channel's life costs, from the chain's current {@link FeeSchedule} and the
 * gas each handler of the official contract was measured to burn (ton-billing/README.md has the
 * table; ChannelLifecycleTest re-measures it). Used to size the values attached to messages and to
 * refuse settling amounts that the settlement itself would eat.
 */
public final class ChannelCosts {
    /** Gas per handler, measured on the emulator; rounded up to leave room for bigger states. */
    public static final long TOP_UP_GAS = 8_000;

    public static final long INIT_GAS = 10_000;
    public static final long CLOSE_GAS = 15_000;
    public static final long COMMIT_GAS = 10_000;
    public static final long START_UNCOOPERATIVE_GAS = 15_000;
    public static final long CHALLENGE_GAS = 17_000;
    public static final long FINISH_GAS = 15_000;

    private final FeeSchedule fees;

    public ChannelCosts(FeeSchedule fees) {
        this.fees = fees;
    }

    public FeeSchedule fees() {
        return fees;
    }

    /**
     * The reserve to agree on as {@link ChannelTerms#excessFee()}: enough for a commit and then a
     * close or a finish, each sent as an external message paid by the contract.
     */
    public BigInteger excessFee() {
        return fees.gasFee(COMMIT_GAS)
                .add(fees.gasFee(Math.max(CLOSE_GAS, FINISH_GAS)))
                .multiply(BigInteger.TWO);
    }

    /**
     * Value A attaches to deploy the channel and top up {@code deposit}: the deposit, the reserve,
     * the gas.
     */
    public BigInteger deployValue(BigInteger deposit, BigInteger excessFee) {
        return deposit.add(excessFee).add(fees.gasFee(TOP_UP_GAS));
    }

    /**
     * Value attached to a handler called from a wallet; what gas leaves stays in the channel and
     * goes to A at close.
     */
    public BigInteger callValue(long gas) {
        return fees.gasFee(gas).multiply(BigInteger.TWO);
    }

    /**
     * The forwarding fee deducted from each payout the contract sends (its body fits in the root
     * cell, so the lump price).
     */
    public BigInteger payoutForwardFee() {
        return fees.forwardFee(0, 0);
    }

    /**
     * Below this, a cooperative close moves less to B than it burns: B's payout loses the
     * forwarding fee and the contract pays the close's gas.
     */
    public BigInteger dustLimit() {
        return payoutForwardFee().add(fees.gasFee(CLOSE_GAS));
    }
}
