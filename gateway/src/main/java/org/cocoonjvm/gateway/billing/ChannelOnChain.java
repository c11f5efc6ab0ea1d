package org.cocoonjvm.gateway.billing;

import java.math.BigInteger;
import java.time.Duration;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.ChannelTerms;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.chain.OnChainChannel;
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
 */
public final class ChannelOnChain {
    /** Long enough for a worker that lost its connection to come back and challenge. */
    public static final Duration QUARANTINE = Duration.ofHours(1);
    public static final Duration CONDITIONAL_CLOSE = Duration.ofMinutes(10);

    private final ChainClient chain;
    private final ChainWallet wallet;
    private final ChannelCosts costs;
    private final Duration quarantine;
    private final Duration conditionalClose;

    /** Reads the fees from the network config now (config params 20/21, 24/25). */
    public ChannelOnChain(ChainClient chain, ChainWallet wallet) {
        this(chain, wallet, QUARANTINE, CONDITIONAL_CLOSE);
    }

    public ChannelOnChain(ChainClient chain, ChainWallet wallet, Duration quarantine, Duration conditionalClose) {
        this(chain, wallet, new ChannelCosts(FeeSchedule.read(chain)), quarantine, conditionalClose);
    }

    /** @param costs the fees, already read from the network config */
    public ChannelOnChain(ChainClient chain, ChainWallet wallet, ChannelCosts costs, Duration quarantine,
                          Duration conditionalClose) {
        this.chain = chain;
        this.wallet = wallet;
        this.costs = costs;
        this.quarantine = quarantine;
        this.conditionalClose = conditionalClose;
    }

    /** The channel's contract for these parties; its address is fixed by the terms alone. */
    public OnChainChannel channel(ChannelId id, PaymentKeyPair gatewayKey, PaymentPublicKey workerKey, Address payout) {
        return OnChainChannel.asA(new ChannelTerms(id.toBigInteger(), wallet.address(), payout,
                gatewayKey.publicKey().toBytes(), workerKey.toBytes(), costs.excessFee(), quarantine, conditionalClose),
                gatewayKey, chain, costs);
    }

    /**
     * Deploys, funds and opens the channel, skipping what is already on chain (a restart or a
     * reconnect opens nothing twice). Blocking.
     *
     * @param signedSeqno the seqno of the last state signed on this channel (0 before any)
     * @return the OPEN channel's address
     * @throws ChainException {@code channel_settled} when states were signed on it but it is no
     *     longer OPEN: the worker closed it without the gateway, and reopening it would let the
     *     old cumulative amounts be paid again; the caller starts a new channel instead
     */
    public Address open(OnChainChannel channel, long depositNanoton, long signedSeqno) {
        if (signedSeqno > 0 && channel.status() != ChannelStatus.OPEN) {
            throw new ChainException("channel_settled", "channel " + channel.channelId()
                    + " was closed on chain after " + signedSeqno + " states; it is not reopened");
        }
        channel.open(wallet, BigInteger.valueOf(depositNanoton));
        return channel.address();
    }
}
