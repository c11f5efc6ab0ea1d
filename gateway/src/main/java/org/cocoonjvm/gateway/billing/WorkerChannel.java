package org.cocoonjvm.gateway.billing;

import com.google.protobuf.ByteString;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.GatewayMessage;

/**
 * The gateway's payment channel to one worker. Relays meter into it from any event loop through
 * lock-free fields; everything else (the payer, the fees of finished requests, the session to
 * send states on) belongs to {@link ChannelBilling}'s context alone.
 */
public final class WorkerChannel {
    private final ChannelBilling billing;
    private final ChannelId id;
    private final ByteString idBytes;
    private final PaymentPublicKey workerKey;

    // Relays, any event loop.
    final Set<RequestMeter> inFlight = ConcurrentHashMap.newKeySet();
    final AtomicLong unsignedTokens = new AtomicLong();
    final AtomicBoolean payQueued = new AtomicBoolean();

    // ChannelBilling's context only.
    final ChannelPayer payer;
    long finishedFees;
    Consumer<GatewayMessage> session;
    boolean overCapLogged;
    /** The contract, once open on chain; null for an off-chain channel. */
    OnChainChannel onChain;
    /** Its cooperative close is signed: no further state on it. */
    boolean closed;

    WorkerChannel(ChannelBilling billing, ChannelPayer payer, PaymentPublicKey workerKey) {
        this.billing = billing;
        this.id = payer.terms().channelId();
        this.idBytes = ByteString.copyFrom(id.toBytes());
        this.payer = payer;
        this.workerKey = workerKey;
    }

    public ChannelId id() {
        return id;
    }

    /** The id as {@code GenerateRequest.channel_id} carries it. */
    public ByteString idBytes() {
        return idBytes;
    }

    public PaymentPublicKey workerKey() {
        return workerKey;
    }

    /**
     * A meter for one attempt at {@code model} on this worker, or null when the model has no price
     * (admission refuses such requests before they get here).
     */
    public RequestMeter meter(String model) {
        PriceSchedule schedule = billing.schedule(model);
        if (schedule == null) {
            return null;
        }
        RequestMeter meter = new RequestMeter(this, schedule);
        inFlight.add(meter);
        return meter;
    }

    void metered(long tokens) {
        if (unsignedTokens.addAndGet(tokens) >= billing.everyTokens()) {
            billing.payLater(this);
        }
    }

    void finished(RequestMeter meter, long exactFee) {
        billing.finished(this, meter, exactFee);
    }
}
