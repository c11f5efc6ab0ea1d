package org.cocoonjvm.gateway.billing;

import com.google.protobuf.ByteString;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import java.math.BigInteger;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.CloseTerms;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.billing.channel.VoucherVerifier;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.Payment;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.PriceTerms;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * Pays workers: the one owner of every channel's state. Relays meter tokens into a
 * {@link WorkerChannel} lock-free; this verticle sums what each worker is owed (exact fees of
 * finished requests plus the running fees of those in flight), signs a new cumulative state every
 * K tokens or T ms, records it in the {@link ChannelJournal}, then sends it on the worker's
 * session.
 *
 * <p>With a {@link ChannelOnChain}, each channel is the official contract on chain: deployed,
 * funded with the deposit cap and OPEN before the worker hears of it, so every state it receives
 * is redeemable. Without one, channels are off-chain only (development and the demo).
 */
public final class ChannelBilling extends VerticleBase {
    private static final Logger log = LoggerFactory.getLogger(ChannelBilling.class);

    private final PaymentOptions options;
    private final Function<String, PriceSchedule> prices;
    private final ChannelJournal journal;
    private final PaymentKeyPair key;
    /** Null: off-chain channels only. */
    private final ChannelOnChain onChain;
    private final SecureRandom random = new SecureRandom();
    /** This context only. */
    private final Map<ChannelId, WorkerChannel> channels = new HashMap<>();
    private volatile boolean paying = true;

    /** An open session's channel and the terms to send the worker in Registered. */
    public record Opened(WorkerChannel channel, PaymentChannel terms) {}

    public ChannelBilling(PaymentOptions options, Function<String, PriceSchedule> prices, ChannelJournal journal,
                          PaymentKeyPair key) {
        this(options, prices, journal, key, null);
    }

    /** @param onChain opens each channel on chain first; null keeps channels off chain */
    public ChannelBilling(PaymentOptions options, Function<String, PriceSchedule> prices, ChannelJournal journal,
                          PaymentKeyPair key, ChannelOnChain onChain) {
        this.options = options;
        this.prices = prices;
        this.journal = journal;
        this.key = key;
        this.onChain = onChain;
    }

    @Override
    public Future<?> start() {
        vertx.setPeriodic(options.everyMs(), id -> channels.values().forEach(this::pay));
        return Future.succeededFuture();
    }

    /**
     * Opens (or reopens, for a key seen before) the channel of a worker that said Hello, and
     * attaches {@code session} to it. Refuses a worker without a valid payment key, and a second
     * session for a key whose first is still open. {@code done} runs on the caller's context.
     *
     * @param session sends a message on the worker's session; callable from any thread
     */
    public void open(Hello hello, Consumer<GatewayMessage> session, Handler<AsyncResult<Opened>> done) {
        Context caller = Vertx.currentContext();
        context.runOnContext(v -> {
            Future<Opened> opened;
            try {
                opened = attach(hello, session);
            } catch (RuntimeException e) {
                opened = Future.failedFuture(e);
            }
            opened.onComplete(result -> {
                if (caller == null) {
                    done.handle(result);
                } else {
                    caller.runOnContext(x -> done.handle(result));
                }
            });
        });
    }

    /** On this context; the chain part, if any, runs on a worker thread and completes back here. */
    private Future<Opened> attach(Hello hello, Consumer<GatewayMessage> session) {
        PaymentPublicKey workerKey;
        try {
            workerKey = PaymentPublicKey.of(hello.getPaymentPublicKey().toByteArray());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("payment_public_key: " + e.getMessage()
                    + "; this gateway pays workers over payment channels and needs one");
        }
        Address payout = onChain == null ? null : payoutAddress(hello);
        ChannelJournal.Entry entry = journal.open(workerKey, () -> ChannelId.random(random));
        WorkerChannel channel = channels.computeIfAbsent(entry.channelId(), id -> new WorkerChannel(this,
                new ChannelPayer(new ChannelTerms(id, key.publicKey(), options.depositCapNanoton()), key, entry.last()),
                workerKey));
        if (channel.session != null) {
            throw new IllegalArgumentException("the payment key " + workerKey
                    + " already has an open session on this gateway");
        }
        // Held from now, so a second session for the key is refused while the chain works.
        channel.session = session;
        PaymentChannel.Builder terms = terms(channel, hello);
        if (onChain == null) {
            return Future.succeededFuture(new Opened(channel, terms.build()));
        }
        OnChainChannel contract = onChain.channel(channel.id(), key, workerKey, payout);
        long signedSeqno = channel.payer.last().seqno();
        return vertx.<Address>executeBlocking(() -> onChain.open(contract, options.depositCapNanoton(), signedSeqno))
                .transform(result -> {
                    if (result.failed()) {
                        if (channel.session == session) {
                            channel.session = null;
                        }
                        if (result.cause() instanceof ChainException e && e.code().equals("channel_settled")) {
                            // Closed without us: the worker's retry gets a new channel.
                            journal.closed(workerKey, channel.id());
                            channels.remove(channel.id(), channel);
                        }
                        log.error("could not open channel {} on chain", channel.id(), result.cause());
                        return Future.failedFuture(new IllegalStateException("the payment channel could not be opened on chain: "
                                + result.cause().getMessage(), result.cause()));
                    }
                    channel.onChain = contract;
                    return Future.succeededFuture(new Opened(channel, terms.setChannelAddress(result.result().toRaw()).build()));
                });
    }

    private static Address payoutAddress(Hello hello) {
        try {
            return Address.of(hello.getPayoutAddress());
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("payout_address '" + hello.getPayoutAddress()
                    + "' is not a TON address; this gateway pays workers on chain and needs one");
        }
    }

    /**
     * Checks and records the worker's signed initial state (seqno 0, sent 0, its own key and this
     * channel); a bad one fails {@code done}, and the caller ends the session.
     */
    public void accepted(WorkerChannel channel, ByteString boc, Handler<AsyncResult<Void>> done) {
        onContext(done, () -> {
            SignedSemiChannel state;
            try {
                state = VoucherVerifier.accept(new ChannelTerms(channel.id(), channel.workerKey(), 0), null, boc.toByteArray());
            } catch (VoucherException e) {
                throw new IllegalArgumentException("the worker's initial state was refused: " + e.getMessage());
            }
            if (state.seqno() != 0) {
                throw new IllegalArgumentException("the worker's initial state has seqno " + state.seqno() + ", expected 0");
            }
            journal.payeeState(state);
            pay(channel);
            return null;
        });
    }

    /**
     * The worker asks to close its on-chain channel cooperatively, showing a state this gateway
     * signed on it: signs the split of the journal's latest state (worker: its sent; gateway: the
     * rest of the deposit), then signs nothing more on that channel. The worker's next session
     * gets a new channel, so its states count from zero against a fresh deposit.
     */
    public void closeRequested(WorkerChannel channel, CloseRequest request, Handler<AsyncResult<CloseSigned>> done) {
        onContext(done, () -> {
            if (channel.onChain == null) {
                throw new IllegalArgumentException("channel " + channel.id() + " is off chain: there is nothing to close");
            }
            SignedSemiChannel held;
            try {
                held = SignedSemiChannel.parse(request.getSignedStateBoc().toByteArray());
            } catch (VoucherException e) {
                throw new IllegalArgumentException("close request: " + e.getMessage());
            }
            // States still on their way when the worker asked are newer than the one it holds: the
            // close pays the journal's latest, which is at least what the worker asked for.
            SemiChannelBody latest = channel.payer.last();
            if (!held.channelId().equals(channel.id()) || !held.signedBy(key.publicKey())) {
                throw new IllegalArgumentException("close request over " + held + ", which this gateway did not sign on channel "
                        + channel.id());
            }
            if (request.getSeqnoB() < 1) {
                throw new IllegalArgumentException("close request with seqno_b 0: the contract needs it above the committed one");
            }
            CloseTerms close = new CloseTerms(BigInteger.valueOf(options.depositCapNanoton() - latest.sentNanoton()),
                    BigInteger.valueOf(latest.sentNanoton()), latest.seqno(), Integer.toUnsignedLong(request.getSeqnoB()));
            byte[] signature = channel.onChain.signClose(close);
            channel.closed = true;
            journal.closed(channel.workerKey(), channel.id());
            channels.remove(channel.id(), channel);
            log.info("signed the cooperative close of channel {}: {} nanoTON to the worker", channel.id(), latest.sentNanoton());
            return CloseSigned.newBuilder().setChannelId(channel.idBytes())
                    .setBalanceA(close.balanceA().longValueExact()).setBalanceB(close.balanceB().longValueExact())
                    .setSeqnoA((int) close.seqnoA()).setSeqnoB((int) close.seqnoB())
                    .setSignature(ByteString.copyFrom(signature)).build();
        });
    }

    /** The session ended: states are kept and sent again when the worker is back. */
    public void detach(WorkerChannel channel, Consumer<GatewayMessage> session) {
        context.runOnContext(v -> {
            if (channel.session == session) {
                channel.session = null;
            }
        });
    }

    /**
     * Test switch: stop (false) or resume (true) signing new states, to drive a worker's credit
     * window. Metering goes on either way.
     */
    public void paying(boolean on) {
        paying = on;
        if (on) {
            context.runOnContext(v -> channels.values().forEach(this::pay));
        }
    }

    /** The gateway's payment key: party A's key on every channel. */
    public PaymentPublicKey publicKey() {
        return key.publicKey();
    }

    PriceSchedule schedule(String model) {
        return prices.apply(model);
    }

    int everyTokens() {
        return options.everyTokens();
    }

    /** At most one pay per channel waits in the context's queue; tokens meanwhile join it. */
    void payLater(WorkerChannel channel) {
        if (channel.payQueued.compareAndSet(false, true)) {
            context.runOnContext(v -> pay(channel));
        }
    }

    void finished(WorkerChannel channel, RequestMeter meter, long exactFee) {
        context.runOnContext(v -> {
            channel.inFlight.remove(meter);
            channel.finishedFees += exactFee;
            pay(channel);
        });
    }

    /**
     * Signs a new state when the worker is owed more than the last one says. Owed is never below
     * the last state: running fees only grow, and a finished request replaces its running fee by
     * its exact fee, which can be lower only when cached or reasoning tokens are cheaper. Then the
     * last state stands until the fees catch up, so nothing is paid twice.
     */
    private void pay(WorkerChannel channel) {
        channel.payQueued.set(false);
        if (!paying || channel.session == null || channel.closed) {
            return;
        }
        long tokens = channel.unsignedTokens.get();
        long owed = channel.finishedFees;
        for (RequestMeter meter : channel.inFlight) {
            owed += meter.owed();
        }
        long sent = channel.payer.last().sentNanoton();
        if (owed > options.depositCapNanoton()) {
            if (!channel.overCapLogged) {
                channel.overCapLogged = true;
                log.error("channel {} owes {} nanoTON, above its cap of {}: the worker is paid up to the cap only; "
                        + "close and reopen the channel", channel.id(), owed, options.depositCapNanoton());
            }
            owed = options.depositCapNanoton();
        }
        if (owed <= sent) {
            return;
        }
        SignedSemiChannel state = channel.payer.pay(owed);
        journal.signed(state);
        channel.unsignedTokens.addAndGet(-tokens);
        channel.session.accept(GatewayMessage.newBuilder()
                .setPayment(Payment.newBuilder().setSignedStateBoc(ByteString.copyFrom(state.boc()))).build());
    }

    private PaymentChannel.Builder terms(WorkerChannel channel, Hello hello) {
        PaymentChannel.Builder terms = PaymentChannel.newBuilder()
                .setChannelId(channel.idBytes())
                .setGatewayPublicKey(ByteString.copyFrom(key.publicKey().toBytes()))
                .setDepositCapNanoton(options.depositCapNanoton())
                .setEveryTokens(options.everyTokens())
                .setEveryMs((int) Math.min(Integer.MAX_VALUE, options.everyMs()));
        for (ModelRef model : hello.getModelsList()) {
            PriceSchedule s = prices.apply(model.getName());
            if (s != null) {
                terms.addPrices(PriceTerms.newBuilder().setModel(model.getName())
                        .setPricePerToken(s.pricePerToken()).setWorkerFeePerToken(s.workerFeePerToken())
                        .setWorkerCoefficient(s.workerCoefficient())
                        .setPromptMultiplier((int) s.multipliers().prompt()).setCachedMultiplier((int) s.multipliers().cached())
                        .setCompletionMultiplier((int) s.multipliers().completion())
                        .setReasoningMultiplier((int) s.multipliers().reasoning()));
            }
        }
        return terms;
    }

    /** Runs {@code work} on this verticle's context and hands its result back on the caller's. */
    private <T> void onContext(Handler<AsyncResult<T>> done, java.util.concurrent.Callable<T> work) {
        Context caller = Vertx.currentContext();
        context.runOnContext(v -> {
            Future<T> result;
            try {
                result = Future.succeededFuture(work.call());
            } catch (Exception e) {
                result = Future.failedFuture(e);
            }
            Future<T> answer = result;
            if (caller == null) {
                done.handle(answer);
            } else {
                caller.runOnContext(x -> done.handle(answer));
            }
        });
    }
}
