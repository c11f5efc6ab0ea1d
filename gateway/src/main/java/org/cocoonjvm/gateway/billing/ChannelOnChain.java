package org.cocoonjvm.gateway.billing;

import java.math.BigInteger;
import java.time.Duration;
import java.util.Optional;
import java.util.OptionalLong;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.ChannelTerms;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.chain.QuarantinedState;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.ton.ton4j.address.Address;

/**
 * The gateway's side of its channels on chain: party A deploys, funds and opens the official
 * contract for each (gateway, worker) pair from the gateway's wallet. Every call blocks on the
 * chain (seconds on a real network), so {@link ChannelBilling} runs it off the event loop, one at a
 * time: the wallet signs one seqno after another. Each channel gets the off-chain deposit cap,
 * so every state the gateway signs is redeemable.
 *
 * <p>Nothing is asked of the chain before the first channel: the network's fees are read, and the
 * wallet deployed, at the first {@link #channel} that needs them, and asked again at the next one
 * until that works. So a gateway started while its chain API is down or its wallet empty needs no
 * restart (audit G, M1): each worker paid on chain is refused with the cause
 * ({@code wallet_underfunded}, {@code unreachable}, …) until that is fixed, and served from then on.
 */
public final class ChannelOnChain {
    /** Long enough for a worker that lost its connection to come back and challenge. */
    public static final Duration QUARANTINE = Duration.ofHours(1);
    public static final Duration CONDITIONAL_CLOSE = Duration.ofMinutes(10);

    private final ChainClient chain;
    private final ChainWallet wallet;
    private final Duration quarantine;
    private final Duration conditionalClose;
    /** Read from the network config at first use; null until then. */
    private volatile ChannelCosts costs;
    /** The wallet was seen active (deployed), so it can pay. */
    private volatile boolean walletActive;

    public ChannelOnChain(ChainClient chain, ChainWallet wallet) {
        this(chain, wallet, QUARANTINE, CONDITIONAL_CLOSE);
    }

    public ChannelOnChain(ChainClient chain, ChainWallet wallet, Duration quarantine, Duration conditionalClose) {
        this(chain, wallet, null, quarantine, conditionalClose);
    }

    /** @param costs the fees, already read from the network config; null reads them at first use */
    public ChannelOnChain(ChainClient chain, ChainWallet wallet, ChannelCosts costs, Duration quarantine,
                          Duration conditionalClose) {
        this.chain = chain;
        this.wallet = wallet;
        this.costs = costs;
        this.quarantine = quarantine;
        this.conditionalClose = conditionalClose;
    }

    /**
     * The channel's contract for these parties; its address is fixed by the terms alone, the
     * network's fees among them. Blocking the first time (it reads them).
     *
     * @throws ChainException when the chain's API does not answer
     */
    public OnChainChannel channel(ChannelId id, PaymentKeyPair gatewayKey, PaymentPublicKey workerKey, Address payout) {
        ChannelCosts fees = costs();
        return OnChainChannel.asA(new ChannelTerms(id.toBigInteger(), wallet.address(), payout,
                gatewayKey.publicKey().toBytes(), workerKey.toBytes(), fees.excessFee(), quarantine, conditionalClose),
                gatewayKey, chain, fees);
    }

    private ChannelCosts costs() {
        ChannelCosts known = costs;
        if (known == null) {
            known = new ChannelCosts(FeeSchedule.read(chain));
            costs = known;
        }
        return known;
    }

    /**
     * The wallet can pay: it is active, or deployed now that it holds coins. Blocking.
     *
     * @throws ChainException {@code wallet_underfunded} while it holds nothing; the API's own
     *                        codes when it cannot tell
     */
    public void walletReady() {
        if (walletActive) {
            return;
        }
        if (!"active".equals(chain.state(wallet.address()))) {
            if (chain.balance(wallet.address()).signum() == 0) {
                throw new ChainException("wallet_underfunded", "the gateway's wallet " + wallet.address().toNonBounceable()
                        + " holds no TON, so it can't open payment channels: send it TON (workers paid on chain are"
                        + " served once it holds enough for a channel's deposit; no restart needed)");
            }
            wallet.deploy();
        }
        walletActive = true;
    }

    /**
     * Deploys, funds and opens the channel, skipping what is already on chain (a restart or a
     * reconnect opens nothing twice). Blocking.
     *
     * @param depositNanoton what a channel opened now is funded with; one OPEN already holds what
     *                       it was opened with, its cap from then on whatever this is now
     * @param signedSeqno the seqno of the last state signed on this channel (0 before any)
     * @return whether this call opened it, and its deposit
     * @throws ChainException {@code channel_settled} when states were signed on it but it is no
     *     longer OPEN: the worker closed it without the gateway, and reopening it would let the
     *     old cumulative amounts be paid again; or when an uncooperative close runs on it, started
     *     by someone holding this gateway's key, states or none (the worker leaves such a channel:
     *     waiting for the close kept it out for the whole quarantine). The caller starts a new
     *     channel instead
     */
    public Opened open(OnChainChannel channel, long depositNanoton, long signedSeqno) {
        ChannelStatus status = "active".equals(chain.state(channel.address())) ? channel.status() : ChannelStatus.UNINITED;
        if (status != ChannelStatus.OPEN && status != ChannelStatus.UNINITED) {
            throw new ChainException("channel_settled", "channel " + channel.channelId() + " is " + status
                    + " on chain: an uncooperative close runs on it; it is not reopened");
        }
        boolean openAlready = status == ChannelStatus.OPEN;
        if (signedSeqno > 0 && !openAlready) {
            throw new ChainException("channel_settled", "channel " + channel.channelId()
                    + " was closed on chain after " + signedSeqno + " states; it is not reopened");
        }
        walletReady();
        long held = channel.open(wallet, BigInteger.valueOf(depositNanoton)).balanceA().longValueExact();
        return new Opened(!openAlready, held);
    }

    /**
     * What the contract at {@code contractAddress} (raw form) holds for A while it is OPEN: its
     * channel's deposit; empty when it is not open. Blocking.
     */
    public OptionalLong depositIfOpen(String contractAddress) {
        ChannelData data = ChannelData.read(chain, Address.of(contractAddress));
        return data.status() == ChannelStatus.OPEN ? OptionalLong.of(data.balanceA().longValueExact()) : OptionalLong.empty();
    }

    /**
     * The states an uncooperative close submitted on the contract at {@code contractAddress} (raw
     * form), if one runs there. Blocking.
     */
    public Optional<QuarantinedState> closeUnderWay(String contractAddress) {
        ChannelData data = ChannelData.read(chain, Address.of(contractAddress));
        return data.status() == ChannelStatus.OPEN ? Optional.empty() : data.quarantined();
    }

    /**
     * @param now            this call opened the channel (false: it was OPEN already)
     * @param depositNanoton what the contract holds for A: the most the channel pays
     */
    public record Opened(boolean now, long depositNanoton) {}
}
