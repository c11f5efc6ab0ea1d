package org.cocoonjvm.worker.serve;

import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.protocol.grpc.Payment;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Payments a gateway sends on {@link GatewayLink}'s session, on their way to
 * {@link WorkerPayments#pay}: each is verified and stored on a worker thread, a signature check and
 * two fsyncs, which would hold up every stream on the link's event loop. Owns the payments waiting
 * for that and what waits for them to be stored; apart from the link because none of it depends on
 * the session's state. On the link's event loop only; logs as the link, whose log operators read.
 */
final class PaymentIntake {
    private static final Logger log = LoggerFactory.getLogger(GatewayLink.class);

    private final Vertx vertx;
    private final SocketAddress gateway;
    private final WorkerPayments payments;
    /** Given each state accepted, on the loop, when channels are settled on chain. */
    private final Consumer<SignedSemiChannel> settleIfDue;
    /** Each channel's newest Payment not yet verified, in arrival order; empty when none waits. */
    private final Map<ChannelId, SignedSemiChannel> pendingPayments = new LinkedHashMap<>();
    /** A batch of payments is being verified and stored off the loop. */
    private boolean paying;
    /** What waits for the payments received so far to be stored ({@link #whenPaymentsStored}). */
    private final List<Runnable> afterPayments = new ArrayList<>();

    /** @param settleIfDue given each state accepted, on the loop, when channels are settled on chain */
    PaymentIntake(Vertx vertx, SocketAddress gateway, WorkerPayments payments, Consumer<SignedSemiChannel> settleIfDue) {
        this.vertx = vertx;
        this.gateway = gateway;
        this.payments = payments;
        this.settleIfDue = settleIfDue;
    }

    void received(Payment payment) {
        // States are cumulative per channel, so of a burst that arrived together only each
        // channel's newest needs verifying: a signature check costs ~0.1 ms, and K = 1 can
        // send them faster. Per channel: a channel and the one replacing it are paid in the
        // same rounds, and the newest of the two dropped the other's last state.
        SignedSemiChannel state;
        try {
            state = SignedSemiChannel.parse(payment.getSignedStateBoc().toByteArray());
        } catch (VoucherException e) {
            log.warn("refused a payment from gateway {}: {}", gateway, e.getMessage());
            return;
        }
        pendingPayments.put(state.channelId(), state);
        if (!paying) {
            acceptPendingPayments();
        }
    }

    /**
     * Verifies and stores the pending states off the event loop. One batch at a time; what arrives
     * meanwhile waits in {@link #pendingPayments}, where a channel's newer state replaces its older.
     * Unordered with the link's other blocking work (opens and closes read the chain, for seconds
     * at worst): a close is checked against the account under its own lock, whichever comes first.
     */
    private void acceptPendingPayments() {
        List<SignedSemiChannel> states = List.copyOf(pendingPayments.values());
        pendingPayments.clear();
        paying = true;
        vertx.executeBlocking(() -> verifyAndStore(states), false).onComplete(done -> {
            paying = false;
            if (done.failed()) {
                log.error("could not store the payments of gateway {}", gateway, done.cause());
            } else if (payments.onChain()) {
                done.result().forEach(settleIfDue);
            }
            if (!pendingPayments.isEmpty()) {
                acceptPendingPayments();
            } else {
                List<Runnable> waiting = List.copyOf(afterPayments);
                afterPayments.clear();
                waiting.forEach(Runnable::run);
            }
        });
    }

    /** Runs {@code then} on the loop once every payment received so far is verified and stored (or refused). */
    void whenPaymentsStored(Runnable then) {
        if (paying) {
            afterPayments.add(then);
        } else {
            then.run();
        }
    }

    /** On a worker thread: the states accepted, in order. */
    private List<SignedSemiChannel> verifyAndStore(List<SignedSemiChannel> received) {
        List<SignedSemiChannel> accepted = new ArrayList<>(received.size());
        for (SignedSemiChannel state : received) {
            try {
                accepted.add(payments.pay(state));
                log.debug("payment on channel {}: seqno {}, {} nanoTON", state.channelId(), state.seqno(), state.sentNanoton());
            } catch (VoucherException e) {
                // The gateway's next state supersedes this one; the credit window covers the gap.
                log.warn("refused a payment from gateway {}: {}", gateway, e.getMessage());
            }
        }
        return accepted;
    }
}
