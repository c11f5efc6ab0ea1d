package org.cocoonjvm.gateway.billing;

import java.security.SecureRandom;
import java.util.function.Consumer;
import com.google.protobuf.ByteString;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.grpc.common.GrpcStatus;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.billing.channel.VoucherVerifier;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.PriceTerms;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * The opening of a worker's channel, for {@link ChannelBilling}: the journal's channel for its key
 * ({@link ChannelBilling#open}) or the one that replaces a channel it asked to close
 * ({@link ChannelBilling#replace}), attached to its session, on chain deployed, funded and OPEN
 * first; the terms the worker is sent in Registered; and the worker's signed initial state that
 * answers them ({@link ChannelBilling#accepted}).
 *
 * <p>One owner, one thread: ChannelBilling makes it once its context has started, and calls it on
 * that context only (its public open, replace and accepted check the worker's Hello or state on
 * the caller's thread with the static methods here, then hop there). Every instance method runs
 * there too, so it attaches channels without locks; the journal and the chain run on worker
 * threads and complete back here.
 */
final class ChannelOpening {
    /** ChannelBilling's logger: these lines were its own, and operators' log filters name it. */
    private static final Logger log = LoggerFactory.getLogger(ChannelBilling.class);

    private final ChannelBilling billing;
    private final Context context;
    private final ChannelJournal journal;
    /** Null: off-chain channels only. */
    private final ChannelOnChain onChain;
    private final PaymentKeyPair key;
    private final PaymentOptions options;
    /** New channels' ids. */
    private final SecureRandom random = new SecureRandom();

    /** A channel's contract, OPEN, and whether this attach opened it ({@code now}) or found it open. */
    private record OpenedOnChain(OnChainChannel contract, ChannelOnChain.Opened opened) {}

    ChannelOpening(ChannelBilling billing, Context context, ChannelJournal journal, ChannelOnChain onChain,
                   PaymentKeyPair key, PaymentOptions options) {
        this.billing = billing;
        this.context = context;
        this.journal = journal;
        this.onChain = onChain;
        this.key = key;
        this.options = options;
    }

    /** {@link ChannelBilling#open}, on this context, for a Hello whose key and payout address were checked. */
    Future<ChannelBilling.Opened> open(PaymentPublicKey workerKey, Address payout, Hello hello,
                                       Consumer<GatewayMessage> session) {
        return context.executeBlocking(() -> journal.open(workerKey, () -> ChannelId.random(random)), false)
                .compose(entry -> attach(entry, workerKey, payout, hello, session));
    }

    /** {@link ChannelBilling#replace}, on this context, for a Hello whose payout address was checked. */
    Future<ChannelBilling.Opened> replace(WorkerChannel current, Address payout, Hello hello,
                                          Consumer<GatewayMessage> session) {
        return context.executeBlocking(() -> journal.replace(current.workerKey(), current.id(),
                        () -> ChannelId.random(random)), false)
                .compose(entry -> attach(entry, current.workerKey(), payout, hello, session));
    }

    /** On this context; the chain part, if any, runs on a worker thread and completes back here. */
    private Future<ChannelBilling.Opened> attach(ChannelJournal.Entry entry, PaymentPublicKey workerKey, Address payout,
                                                 Hello hello, Consumer<GatewayMessage> session) {
        WorkerChannel channel = billing.channelToAttach(entry);
        if (channel.attached()) {
            return Future.failedFuture(new WorkerRefusedException(GrpcStatus.ALREADY_EXISTS, "payment_key_in_use",
                    "the payment key " + workerKey + " already has an open session on this gateway"));
        }
        // Held from now, so a second session for the key is refused while the chain works.
        channel.attach(session, hello.getWorkerId());
        PaymentChannel.Builder terms = terms(channel, hello);
        if (onChain == null) {
            return Future.succeededFuture(new ChannelBilling.Opened(channel, terms.build()));
        }
        long signedSeqno = channel.payer().last().seqno();
        PaymentStats stats = billing.stats();
        return context.owner().<OpenedOnChain>executeBlocking(() -> {
                    // The contract's address derives from the network's fees, read at the first channel.
                    OnChainChannel contract = onChain.channel(channel.id(), key, workerKey, payout);
                    ChannelJournal.Contract wanted = new ChannelJournal.Contract(contract.address().toRaw(), payout.toRaw());
                    ChannelJournal.Contract bound = journal.bind(channel.id(), wanted);
                    if (!bound.equals(wanted)) {
                        throw termsChanged(channel.id(), workerKey, bound, wanted);
                    }
                    return new OpenedOnChain(contract, onChain.open(contract, options.depositCapNanoton(), signedSeqno));
                })
                .transform(result -> {
                    if (result.failed()) {
                        channel.detach(session);
                        if (result.cause() instanceof WorkerRefusedException refused) {
                            stats.countOpenRefused(refused.code());
                            return Future.failedFuture(refused);
                        }
                        if (result.cause() instanceof ChainException e && e.code().equals("channel_settled")) {
                            // Closed without us: the worker's retry gets a new channel.
                            billing.closedWithoutGateway(channel);
                        }
                        if (!(result.cause() instanceof ChainException)) {
                            // The chain's own failures (underfunded, settled, unreachable) are said in
                            // the worker's refusal: one line, once a minute while it retries.
                            log.error("could not open channel {} on chain", channel.id(), result.cause());
                        }
                        // The chain's own code where it has one (wallet_underfunded tells the operator what to do).
                        String code = result.cause() instanceof ChainException e ? e.code() : "channel_unavailable";
                        stats.countOpenRefused(code);
                        return Future.failedFuture(new WorkerRefusedException(GrpcStatus.UNAVAILABLE, code,
                                "the payment channel could not be opened on chain: " + result.cause().getMessage()));
                    }
                    OnChainChannel contract = result.result().contract();
                    long deposit = result.result().opened().depositNanoton();
                    channel.openedOnChain(contract, payout.toRaw(), deposit);
                    if (result.result().opened().now()) {
                        // Not by whether the journal bound it just now: an open refused after the bind
                        // (an empty wallet) left it bound, and its retry's open went uncounted (audit K, K-3).
                        stats.countOpenedOnChain();
                    }
                    // Its contract's deposit, not the cap set now: one funded under another setting
                    // holds what it held, and its worker checks the two agree.
                    return Future.succeededFuture(new ChannelBilling.Opened(channel, terms.setDepositCapNanoton(deposit)
                            .setChannelAddress(contract.address().toRaw()).build()));
                });
    }

    private PaymentChannel.Builder terms(WorkerChannel channel, Hello hello) {
        PaymentChannel.Builder terms = PaymentChannel.newBuilder()
                .setChannelId(channel.idBytes())
                .setGatewayPublicKey(ByteString.copyFrom(key.publicKey().toBytes()))
                .setDepositCapNanoton(options.depositCapNanoton())
                .setEveryTokens(options.everyTokens())
                .setEveryMs((int) Math.min(Integer.MAX_VALUE, options.everyMs()));
        for (ModelRef model : hello.getModelsList()) {
            PriceSchedule s = billing.schedule(model.getName());
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

    /**
     * The worker's terms derive a contract other than the one its channel is bound to. Its states
     * name only the channel id, so a second contract under that id would pay each of them again
     * (audit G, C1); and the bound one, funded, may hold states already. Only the worker's operator
     * can settle it: the old payout address back, or a new payment key, which gets a new channel.
     */
    private static WorkerRefusedException termsChanged(ChannelId id, PaymentPublicKey workerKey,
                                                       ChannelJournal.Contract bound, ChannelJournal.Contract wanted) {
        if (!bound.payoutAddress().equals(wanted.payoutAddress())) {
            String paid = friendly(bound.payoutAddress());
            return new WorkerRefusedException(GrpcStatus.FAILED_PRECONDITION, "payout_address_changed",
                    "this worker's payment key " + workerKey + " has channel " + id + ", its contract at "
                    + bound.address() + " paying out to " + paid + " (" + bound.payoutAddress() + "), not to "
                    + friendly(wanted.payoutAddress()) + " (" + wanted.payoutAddress() + "): restart the worker with"
                    + " --payout-address " + paid + " (its channel pays there until it is closed, and its next channel"
                    + " pays the new address), or with a"
                    + " new payment key (a new --payment-dir)");
        }
        return new WorkerRefusedException(GrpcStatus.FAILED_PRECONDITION, "channel_terms_changed",
                "this worker's payment key " + workerKey + " has channel " + id + ", its contract at " + bound.address()
                + ", but this gateway's terms now derive " + wanted.address() + " (its wallet, the channels'"
                + " quarantine or close timeouts, or the network's fees changed): restart the gateway with the terms the"
                + " channel was opened with, or the worker with a new payment key (a new --payment-dir)");
    }

    /**
     * The user-friendly form (non-bounceable, as the launcher prints wallets) of an address the
     * journal keeps raw ({@code 0:…}): an owner typed that form, and from the raw one alone could
     * not tell which of their wallets was meant (audit M, M-3).
     */
    private static String friendly(String raw) {
        return TonAddresses.parse(raw).toNonBounceable();
    }

    /** Any thread: the Hello's payment key, which every channel needs. */
    static PaymentPublicKey paymentKey(Hello hello) throws WorkerRefusedException {
        try {
            return PaymentPublicKey.of(hello.getPaymentPublicKey().toByteArray());
        } catch (IllegalArgumentException e) {
            throw WorkerRefusedException.invalid("payment_key_invalid", "payment_public_key: " + e.getMessage()
                    + "; this gateway pays workers over payment channels and needs one");
        }
    }

    /** Any thread: the Hello's payout address, which an on-chain channel needs. */
    static Address payoutAddress(Hello hello) throws WorkerRefusedException {
        try {
            return TonAddresses.parse(hello.getPayoutAddress());
        } catch (IllegalArgumentException e) {
            throw WorkerRefusedException.invalid("payout_address_invalid", "payout_address '" + hello.getPayoutAddress()
                    + "' is not a TON address (" + e.getMessage() + "); this gateway pays workers on chain and needs one"
                    + " (./cocoon worker --payout-address)");
        }
    }

    /** Any thread: {@link ChannelBilling#accepted}'s check of the worker's initial state; a bad one throws. */
    static SignedSemiChannel initialState(WorkerChannel channel, ByteString boc) {
        SignedSemiChannel state;
        try {
            state = VoucherVerifier.accept(new ChannelTerms(channel.id(), channel.workerKey(), 0), null, boc.toByteArray());
        } catch (VoucherException e) {
            throw new IllegalArgumentException("the worker's initial state was refused: " + e.getMessage());
        }
        if (state.seqno() != 0) {
            throw new IllegalArgumentException("the worker's initial state has seqno " + state.seqno() + ", expected 0");
        }
        return state;
    }

    /** {@link ChannelBilling#accepted}, on this context, for a checked initial state: {@code done} runs on {@code caller}. */
    void accepted(Context caller, WorkerChannel channel, SignedSemiChannel state, Handler<AsyncResult<Void>> done) {
        context.<Void>executeBlocking(() -> {
            journal.payeeState(state);
            return null;
        }, false).onComplete(result -> {
            if (result.succeeded()) {
                resendLast(channel);
            }
            billing.rounds().round();
            ChannelBilling.answer(caller, done, result);
        });
    }

    /**
     * A state signed while the worker was away, or sent on a session that then broke, never
     * reached it, and a channel with nothing more to pay signs no later one: each new session
     * gets the last state again (the worker takes an identical one as a no-op). A round in flight
     * holds the payer, and sends a newer state on this session when it ends.
     */
    private void resendLast(WorkerChannel channel) {
        if (!billing.rounds().roundInFlight()) {
            SignedSemiChannel last = channel.payer().lastSigned();
            if (last != null) {
                channel.send(last);
            }
        }
    }
}
