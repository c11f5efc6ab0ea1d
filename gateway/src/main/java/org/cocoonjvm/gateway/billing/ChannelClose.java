package org.cocoonjvm.gateway.billing;

import java.math.BigInteger;
import java.util.HashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import com.google.protobuf.ByteString;
import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import org.cocoonjvm.billing.chain.CloseTerms;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cooperative close of a worker's on-chain channel, for {@link ChannelBilling}: check the
 * request, drain the channel's running requests, pay what it still owes in one more round, sign the
 * split ({@link ChannelBilling#closeRequested}); sign again a close that never reached its worker;
 * and the outcome of a close's delivery ({@link ChannelBilling#closeDelivered},
 * {@link ChannelBilling#closeUndelivered}).
 *
 * <p>One owner, one thread: ChannelBilling makes it once its context has started, and calls it on
 * that context only (its public close methods hop there first). Every method here runs there too,
 * so it reads and moves the channels' state and waits for ChannelBilling's rounds without locks;
 * a journal read and a contract's derivation run on worker threads and complete back here.
 */
final class ChannelClose {
    /** ChannelBilling's logger: these lines were its own, and operators' log filters name it. */
    private static final Logger log = LoggerFactory.getLogger(ChannelBilling.class);
    /**
     * Longer than any request may run at the relay's default timeout (10 minutes), so a drain ends
     * with its requests: cut at a minute, a long answer ran on unpaid until the worker's credit
     * window held it and it failed payment_overdue (audit K, K-2). Past this only a gateway run
     * with a longer --request-timeout-seconds has requests left, and a relay that never ended
     * would otherwise hold the close for ever.
     */
    static final long CLOSE_DRAIN_LIMIT_NANOS = TimeUnit.MINUTES.toNanos(15);
    /**
     * How often a draining close looks at the channel's running requests. They end on the relays'
     * event loops, lock-free; a wake-up from each would cost every request a hop here for the sake
     * of a rare close, so the close polls instead, and is signed at most this much later.
     */
    private static final long CLOSE_DRAIN_POLL_MS = 20;

    private final ChannelBilling billing;
    private final Context context;
    private final ChannelJournal journal;
    /** Null: off-chain channels only, and every close is refused. */
    private final ChannelOnChain onChain;
    private final PaymentKeyPair key;

    /**
     * One close request on its way to its signature.
     *
     * @param caller     the context {@code done} completes on (null: here)
     * @param session    the session the request came on: a close whose session ended before it is
     *                   signed is not signed
     * @param drainUntil when the drain stops waiting for running requests ({@link System#nanoTime})
     */
    record Asked(Context caller, Consumer<GatewayMessage> session, CloseRequest request,
                 Handler<AsyncResult<ChannelBilling.Signed>> done, long drainUntil) {}

    ChannelClose(ChannelBilling billing, Context context, ChannelJournal journal, ChannelOnChain onChain,
                 PaymentKeyPair key) {
        this.billing = billing;
        this.context = context;
        this.journal = journal;
        this.onChain = onChain;
        this.key = key;
    }

    /** {@link ChannelBilling#closeRequested}, on this context: {@code current} is the asking session's channel. */
    void requested(WorkerChannel current, Asked asked) {
        ChannelId id;
        WorkerChannel channel;
        try {
            id = channelClosedBy(asked.request());
            channel = id.equals(current.id()) ? current : billing.channel(id);
            if (channel == null) {
                signAgain(current, id, asked);
                return;
            }
            checkTarget(channel, current, asked.session());
        } catch (IllegalArgumentException e) {
            ChannelBilling.answer(asked.caller(), asked.done(), Future.failedFuture(e));
            return;
        }
        contract(channel).onComplete(known -> {
            try {
                if (known.failed()) {
                    throw new IllegalArgumentException("channel " + channel.id() + ": " + known.cause().getMessage());
                }
                checkClose(channel, asked.request());
            } catch (IllegalArgumentException e) {
                ChannelBilling.answer(asked.caller(), asked.done(), Future.failedFuture(e));
                return;
            }
            if (!current.attachedTo(asked.session())) {
                // It ended while the contract was read: attached to it now, the channel would stay
                // closing on a dead session, and each later close refused (review AA, AA-4).
                sessionEnded(channel, asked);
                return;
            }
            channel.closeAsked(asked.session());
            closeWhenDrained(channel, asked);
        });
    }

    /** The channel {@code request} closes. */
    static ChannelId channelClosedBy(CloseRequest request) {
        try {
            return SignedSemiChannel.parse(request.getSignedStateBoc().toByteArray()).channelId();
        } catch (VoucherException e) {
            throw new IllegalArgumentException("close request: " + e.getMessage());
        }
    }

    /**
     * A close this gateway signed and recorded, asked for again: its CloseSigned was written as the
     * connection broke, and the worker never got it (without it the contract stays open, with the
     * worker's earnings and the gateway's deposit in it). The same split is signed again, from the
     * journal's record of the channel at its close; nothing more is recorded. A channel the journal
     * never closed for this worker key is refused.
     */
    private void signAgain(WorkerChannel current, ChannelId id, Asked asked) {
        context.executeBlocking(() -> journal.closedChannel(current.workerKey(), id).orElseThrow(() ->
                        new IllegalArgumentException("close request for channel " + id + ", which is not a channel of"
                                + " payment key " + current.workerKey() + " on this gateway")), false)
                .compose(entry -> {
                    WorkerChannel closed = billing.channelOf(entry);
                    return contract(closed).map(known -> {
                        checkClose(closed, asked.request());
                        return new ChannelBilling.Signed(closed, signClose(closed, asked.request()));
                    });
                })
                .onComplete(result -> ChannelBilling.answer(asked.caller(), asked.done(), result));
    }

    /**
     * Completes, on this context, once {@code channel} knows its contract and deposit, if it has
     * one: a channel read from the journal at start and not opened since knows its address only,
     * and its close is signed with the contract's terms. Terms that no longer derive that address fail.
     */
    private Future<Void> contract(WorkerChannel channel) {
        if (onChain == null || channel.onChain() != null || channel.contractAddress() == null) {
            return Future.succeededFuture();
        }
        return context.executeBlocking(() -> {
            OnChainChannel contract = onChain.channel(channel.id(), key, channel.workerKey(),
                    TonAddresses.parse(channel.payoutAddress()));
            if (!contract.address().toRaw().equals(channel.contractAddress())) {
                throw new IllegalStateException("its contract is at " + channel.contractAddress() + ", but this gateway's"
                        + " terms now derive " + contract.address().toRaw() + ": restart it with the terms the channel"
                        + " was opened with");
            }
            return new Derived(contract, contract.state().balanceA().longValueExact());
        }, false).map(derived -> {
            channel.contractDerived(derived.contract(), derived.depositNanoton());
            return null;
        });
    }

    private record Derived(OnChainChannel contract, long depositNanoton) {}

    /** A close may name the session's channel, or another open one of the same worker key that no other session holds. */
    private static void checkTarget(WorkerChannel channel, WorkerChannel current, Consumer<GatewayMessage> session) {
        if (!channel.workerKey().equals(current.workerKey())) {
            throw new IllegalArgumentException("close request for channel " + channel.id() + ", which is not a channel of"
                    + " payment key " + current.workerKey() + " on this gateway");
        }
        if (channel.closing()) {
            throw new IllegalArgumentException("channel " + channel.id() + " is being closed already: one CloseRequest"
                    + " per channel");
        }
        if (channel.attached() && !channel.attachedTo(session)) {
            throw new IllegalArgumentException("channel " + channel.id() + " is attached to another session of this worker");
        }
    }

    private void closeWhenDrained(WorkerChannel channel, Asked asked) {
        if (!channel.attachedTo(asked.session())) {
            // Its session ended: the worker never sees this close, and asks again on its next one.
            sessionEnded(channel, asked);
            return;
        }
        if (channel.running() > 0) {
            if (System.nanoTime() - asked.drainUntil() < 0) {
                context.owner().setTimer(CLOSE_DRAIN_POLL_MS, id -> closeWhenDrained(channel, asked));
                return;
            }
            log.warn("channel {} still has {} request(s) running {} min after its worker asked to close it: closing it"
                    + " now; what they make from here is not paid, and once it passes the worker's credit window they end"
                    + " with payment_overdue", channel.id(), channel.running(),
                    TimeUnit.NANOSECONDS.toMinutes(CLOSE_DRAIN_LIMIT_NANOS));
        }
        closeWhenNoRound(channel, asked, true);
    }

    /**
     * A round in flight may be signing a newer state off this context; the close waits for it to be
     * sent, so the split it signs is at least every state the worker will ever hold. Then, when the
     * channel owes more than its last state (requests that finished since, tokens of any still
     * running), one more round pays that first: nothing is signed on the channel after its close.
     * One round only: a request still running past the drain keeps owing a little more.
     */
    private void closeWhenNoRound(WorkerChannel channel, Asked asked, boolean catchUp) {
        if (billing.rounds().roundInFlight()) {
            billing.rounds().afterRound(() -> closeWhenNoRound(channel, asked, catchUp));
            return;
        }
        if (catchUp && billing.paying() && channel.attached() && !channel.closed()
                && channel.due(new HashMap<>()) != null) {
            billing.rounds().afterRound(() -> closeWhenNoRound(channel, asked, false));
            billing.rounds().round();
            return;
        }
        if (!channel.attachedTo(asked.session())) {
            // A stopping gateway closes the sessions after its last round, which a drained close's
            // catch-up round may follow: signed now, the close would reach nobody, and the journal
            // would forget a channel still open on chain (audit K, K-1).
            sessionEnded(channel, asked);
            return;
        }
        Future<ChannelBilling.Signed> result;
        try {
            result = Future.succeededFuture(new ChannelBilling.Signed(channel, signClose(channel, asked.request())));
        } catch (RuntimeException e) {
            result = Future.failedFuture(e);
        }
        ChannelBilling.answer(asked.caller(), asked.done(), result);
    }

    /** The close's session is gone before it was signed: the channel stays open, and its worker asks again. */
    private static void sessionEnded(WorkerChannel channel, Asked asked) {
        channel.closeAbandoned();
        ChannelBilling.answer(asked.caller(), asked.done(), Future.failedFuture(new IllegalStateException(
                "the session ended before channel " + channel.id() + " was closed")));
    }

    /** A close request the worker may make: an on-chain channel, a state this gateway signed on it, a seqno_b the contract takes. */
    private void checkClose(WorkerChannel channel, CloseRequest request) {
        if (channel.closed()) {
            throw new IllegalArgumentException("channel " + channel.id() + " is closed already");
        }
        if (channel.onChain() == null) {
            throw new IllegalArgumentException("channel " + channel.id() + " is off chain: there is nothing to close");
        }
        SignedSemiChannel held;
        try {
            held = SignedSemiChannel.parse(request.getSignedStateBoc().toByteArray());
        } catch (VoucherException e) {
            throw new IllegalArgumentException("close request: " + e.getMessage());
        }
        if (!held.channelId().equals(channel.id()) || !held.signedBy(key.publicKey())) {
            throw new IllegalArgumentException("close request over " + held + ", which this gateway did not sign on channel "
                    + channel.id());
        }
        if (request.getSeqnoB() < 1) {
            throw new IllegalArgumentException("close request with seqno_b 0: the contract needs it above the committed one");
        }
    }

    private CloseSigned signClose(WorkerChannel channel, CloseRequest request) {
        checkClose(channel, request);
        // States sent since the worker asked (the drain's, the catch-up round's) are newer than the
        // one it holds: the close pays the journal's latest, which is at least what it asked for.
        SemiChannelBody latest = channel.payer().last();
        // The contract pays B its balance and A all the rest: A's balance is said as it stands.
        long deposit = channel.deposit().orElseThrow();
        CloseTerms close = new CloseTerms(BigInteger.valueOf(deposit - latest.sentNanoton()),
                BigInteger.valueOf(latest.sentNanoton()), latest.seqno(), Integer.toUnsignedLong(request.getSeqnoB()));
        byte[] signature = channel.onChain().signClose(close);
        channel.closeSigned();
        return CloseSigned.newBuilder().setChannelId(channel.idBytes())
                .setBalanceA(close.balanceA().longValueExact()).setBalanceB(close.balanceB().longValueExact())
                .setSeqnoA((int) close.seqnoA()).setSeqnoB((int) close.seqnoB())
                .setSignature(ByteString.copyFrom(signature)).build();
    }

    /** {@link ChannelBilling#closeDelivered}, on this context. */
    void delivered(WorkerChannel channel) {
        if (billing.closedCooperatively(channel)) {
            log.info("signed the cooperative close of channel {}: {} nanoTON to the worker", channel.id(),
                    channel.payer().last().sentNanoton());
        }
    }

    /** {@link ChannelBilling#closeUndelivered}, on this context. */
    void undelivered(WorkerChannel channel) {
        channel.closeUnsent();
        log.info("the close of channel {} was signed as its worker's session ended, and never sent: the channel stays"
                + " open, and the worker asks again on its next session", channel.id());
    }
}
