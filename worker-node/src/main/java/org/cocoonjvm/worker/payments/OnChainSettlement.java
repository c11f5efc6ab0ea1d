package org.cocoonjvm.worker.payments;

import java.math.BigInteger;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelSettlement;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.CloseTerms;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * The worker's (payee B's) side of its channels on chain: checks each offered contract before any
 * credit is given, decides when the earnings are worth a close ({@link ChannelSettlement}), and
 * sends the cooperative close with the gateway's signature. The close goes out as an external
 * message, paid from the contract's reserve, so the worker needs no wallet of its own: the payout
 * lands at its payout address. Methods that touch the chain block; callers run them off the event
 * loop.
 */
public final class OnChainSettlement {
    private static final Logger log = LoggerFactory.getLogger(OnChainSettlement.class);
    /** How long the gateway may be gone before a channel worth it is closed without it. */
    public static final Duration SILENCE_LIMIT = Duration.ofMinutes(5);
    /** How often each channel is read for an uncooperative close this worker did not start. */
    public static final Duration WATCH_EVERY = Duration.ofSeconds(15);
    /**
     * The shortest quarantine a channel may give: a close started with an old state must be seen
     * and answered before it ends, by a worker that reads the chain every {@code watchEvery} and
     * whose answer takes its own time to land.
     */
    static final Duration MIN_QUARANTINE = Duration.ofMinutes(1);

    private final ChainClient chain;
    private final ChannelCosts costs;
    private final ChannelSettlement policy;
    /** Set later when the worker's wallet could not pay at its start (no TON yet); any thread. */
    private volatile ChainWallet wallet;
    private final long closeThreshold;
    private final Clock clock;
    private final Duration watchEvery;

    /**
     * Cooperative closes only: with no wallet, the worker cannot pay the gas of an uncooperative
     * start (more than an external message gets on credit).
     */
    public OnChainSettlement(ChainClient chain, long closeThreshold, Clock clock) {
        this(chain, closeThreshold, clock, null, SILENCE_LIMIT);
    }

    /**
     * Reads the fees from the network config now.
     *
     * @param closeThreshold close cooperatively once a channel owes at least this many nanoTON;
     *                       it must be above the close's own cost (dust)
     * @param wallet         pays for an uncooperative close once the gateway has been gone for
     *                       {@code silenceLimit}; null: never close without the gateway
     */
    public OnChainSettlement(ChainClient chain, long closeThreshold, Clock clock, ChainWallet wallet,
                             Duration silenceLimit) {
        this(chain, closeThreshold, clock, wallet, silenceLimit, WATCH_EVERY);
    }

    /**
     * @param watchEvery how often each channel is read for an uncooperative close to answer; a
     *                   channel must give at least four times as long (and a minute) to answer
     */
    public OnChainSettlement(ChainClient chain, long closeThreshold, Clock clock, ChainWallet wallet,
                             Duration silenceLimit, Duration watchEvery) {
        if (watchEvery.isNegative() || watchEvery.isZero()) {
            throw new IllegalArgumentException("watchEvery must be positive: " + watchEvery);
        }
        this.watchEvery = watchEvery;
        this.chain = chain;
        this.costs = new ChannelCosts(FeeSchedule.read(chain));
        this.policy = new ChannelSettlement(BigInteger.valueOf(closeThreshold), silenceLimit, costs, clock);
        this.clock = clock;
        this.wallet = wallet;
        this.closeThreshold = closeThreshold;
        if (wallet != null) {
            sayIfShort(wallet);
        }
    }

    Duration watchEvery() {
        return watchEvery;
    }

    /** The time on the clock the settlement rules read. */
    Instant now() {
        return clock.instant();
    }

    /**
     * The worker's wallet can pay from now (funded and deployed after the start): channels are
     * closed without the gateway from then on, with no restart.
     */
    public void payWith(ChainWallet funded) {
        wallet = funded;
        sayIfShort(funded);
    }

    /**
     * A wallet holding less than an answer to a stale close attaches can start nothing either:
     * said at once, not first when a close needs answering (audit Z, Z-4). Blocking (reads the
     * balance); a wallet the chain cannot read now is said nothing of.
     */
    private void sayIfShort(ChainWallet funded) {
        BigInteger needed = costs.callValue(ChannelCosts.CHALLENGE_GAS);
        BigInteger held;
        try {
            held = funded.balance();
        } catch (ChainException unreadable) {
            return;
        }
        if (held.compareTo(needed) < 0) {
            log.warn("wallet {} holds {} nanoTON, less than the {} nanoTON an answer to a stale close attaches for its gas "
                    + "(closing a channel without the gateway takes as much): send it more TON", funded.address().toNonBounceable(),
                    held, needed);
        }
    }

    /**
     * How much a channel with deposit cap {@code depositCap} owes when its close is due: the
     * threshold, or less when the cap is lower. The gateway never pays past its cap, so a worker
     * still open there holds its sequences at its credit window for good; closing a window below
     * the cap gets it a new channel first.
     */
    long closeDueAt(long depositCap, long window) {
        return Math.min(closeThreshold, depositCap - window);
    }

    long closeThreshold() {
        return closeThreshold;
    }

    /** What a cooperative close costs: a channel holding no more than this (dust) is not closed. */
    long closeCost() {
        return costs.dustLimit().longValueExact();
    }

    /** What the chain takes from each payout on its way to the payout address. */
    long payoutForwardFee() {
        return costs.payoutForwardFee().longValueExact();
    }

    /**
     * The gateway's deposit in the contract at {@code channelAddress}, after checking it is OPEN,
     * is channel {@code id}, takes both keys, and pays out to {@code payout}.
     *
     * @throws IllegalArgumentException when the gateway offers no contract (an off-chain channel)
     * @throws org.cocoonjvm.billing.chain.ChainException when the contract is not what the terms say
     */
    long deposit(ChannelId id, PaymentPublicKey gatewayKey, PaymentPublicKey workerKey, Address payout,
                 String channelAddress) {
        if (channelAddress.isEmpty()) {
            throw new IllegalArgumentException("the gateway offers channel " + id
                    + " off chain only; this worker is paid on chain and needs its channel_address");
        }
        Address contract;
        try {
            contract = TonAddresses.parse(channelAddress);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("channel_address '" + channelAddress + "' is not a TON address");
        }
        ChannelData data = ChannelData.read(chain, contract);
        long deposit = data.requireOpenFor(id, gatewayKey, workerKey, payout);
        Duration shortest = minQuarantine();
        if (data.quarantine().compareTo(shortest) < 0) {
            throw new ChainException("quarantine_too_short", "channel " + id + " gives " + data.quarantine().toSeconds()
                    + " s to answer an uncooperative close started with an old state; this worker reads the chain every "
                    + watchEvery.toSeconds() + " s and needs at least " + shortest.toSeconds() + " s");
        }
        return deposit;
    }

    private Duration minQuarantine() {
        Duration watches = watchEvery.multipliedBy(4);
        return watches.compareTo(MIN_QUARANTINE) > 0 ? watches : MIN_QUARANTINE;
    }

    /** What the contract at {@code channelAddress} holds now, an uncooperative close under way included. */
    ChannelData read(String channelAddress) {
        return ChannelData.read(chain, Address.of(channelAddress));
    }

    /** Whether answering a close gains more than the answer costs (its gas, attached from the wallet). */
    boolean worthChallenging(long gain) {
        return BigInteger.valueOf(gain).compareTo(costs.callValue(ChannelCosts.CHALLENGE_GAS)) > 0;
    }

    /**
     * Answers an uncooperative close the gateway started with less than {@code latest}: the
     * contract then pays {@code latest}.
     *
     * @return empty once sent; else why it was not (nothing sent): no wallet, or one holding less
     *         than the answer's gas, which sent anyway would be refused before the contract runs
     */
    Optional<String> challenge(String channelAddress, PaymentKeyPair key, SignedSemiChannel latest, SignedSemiChannel mine) {
        ChainWallet payer = wallet;
        if (payer == null) {
            return Optional.of("this worker has no funded wallet to pay the answer's gas with");
        }
        BigInteger needed = costs.callValue(ChannelCosts.CHALLENGE_GAS);
        BigInteger held = payer.balance();
        if (held.compareTo(needed) < 0) {
            return Optional.of("its wallet " + payer.address().toNonBounceable() + " holds " + held
                    + " nanoTON, less than the " + needed + " nanoTON the answer attaches for its gas");
        }
        OnChainChannel.at(Address.of(channelAddress), key, chain, costs).challenge(payer, latest, mine);
        return Optional.empty();
    }

    /**
     * The gateway has been silent since {@code lastHeard}: starts the uncooperative close with
     * both signed states (the gateway's latest and this worker's initial) when the silence passed
     * the limit and the state is worth more than the close costs.
     *
     * @return whether the close was started
     */
    boolean startUncooperativeIfDue(String channelAddress, PaymentKeyPair key, SignedSemiChannel latest,
                                    SignedSemiChannel mine, Instant lastHeard) {
        ChainWallet payer = wallet;
        if (payer == null || !(policy.onCounterpartySilent(lastHeard, BigInteger.valueOf(latest.sentNanoton()))
                instanceof ChannelSettlement.Action.CloseUncooperatively)) {
            return false;
        }
        OnChainChannel.at(Address.of(channelAddress), key, chain, costs).startUncooperativeClose(payer, latest, mine);
        return true;
    }

    /**
     * Pays out a quarantined channel once its quarantine and conditional-close time are over.
     *
     * @return empty while the contract says it is too early (exit 113); once it is finished, the
     *         hash of the message that finished it, or an empty string when that was not this
     *         call's (the gateway's, or this worker's before a restart)
     */
    Optional<String> finishIfDue(String channelAddress, PaymentKeyPair key) {
        ChannelData data = ChannelData.read(chain, Address.of(channelAddress));
        if (data.status() == ChannelStatus.UNINITED) {
            return Optional.of("");
        }
        try {
            return Optional.of(OnChainChannel.at(Address.of(channelAddress), key, chain, costs).finish());
        } catch (ChainException.Rejected e) {
            if (e.exitCode() != null && e.exitCode() == 113) {
                return Optional.empty();
            }
            throw e;
        }
    }

    /** Whether the latest state owes enough to close for, on a channel of {@code depositCap}. */
    boolean worthClosing(SignedSemiChannel latest, long depositCap, long window) {
        if (latest.sentNanoton() >= closeDueAt(depositCap, window)) {
            return worthClosingAtShutdown(latest);  // near the cap: any close above dust beats a wedged channel
        }
        return policy.onStateAccepted(BigInteger.valueOf(latest.sentNanoton()))
                instanceof ChannelSettlement.Action.CloseCooperatively;
    }

    /** At shutdown: whether the channel owes more than its close costs (more than dust). */
    boolean worthClosingAtShutdown(SignedSemiChannel latest) {
        return policy.onShutdown(BigInteger.valueOf(latest.sentNanoton()))
                instanceof ChannelSettlement.Action.CloseCooperatively;
    }

    /** The worker's seqno for a close of the contract: one above its committed seqno (pitfall 1). */
    long nextSeqnoB(String channelAddress) {
        return ChannelData.read(chain, Address.of(channelAddress)).committedSeqnoB() + 1;
    }

    /**
     * Sends the cooperative close the gateway signed, after checking it pays this worker at least
     * its latest accepted state (more when the gateway's newest states crossed the request).
     *
     * @return the hash (base64) of the close's external message
     * @throws IllegalArgumentException when the signed split pays less than the latest state
     */
    String close(String channelAddress, PaymentKeyPair key, SignedSemiChannel latest, CloseSigned signed) {
        if (signed.getBalanceB() < latest.sentNanoton() || Integer.toUnsignedLong(signed.getSeqnoA()) < latest.seqno()) {
            throw new IllegalArgumentException("the gateway signed a close paying " + signed.getBalanceB()
                    + " nanoTON at seqno " + signed.getSeqnoA() + "; the latest state is " + latest);
        }
        OnChainChannel channel = OnChainChannel.at(Address.of(channelAddress), key, chain, costs);
        CloseTerms close = new CloseTerms(BigInteger.valueOf(signed.getBalanceA()), BigInteger.valueOf(signed.getBalanceB()),
                Integer.toUnsignedLong(signed.getSeqnoA()), Integer.toUnsignedLong(signed.getSeqnoB()));
        return channel.close(signed.getSignature().toByteArray(), close);
    }
}
