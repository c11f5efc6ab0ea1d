package org.cocoonjvm.worker.serve;

import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import java.time.Instant;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The link's hand-off to on-chain settlement: a periodic tick that starts uncooperative closes
 * while the gateway is gone, watches the chain for closes to answer or finish, and tells the
 * gateway when the session's channel closes on chain (then leaves it). Owns the tick's timer and
 * bookkeeping, and when the gateway was last heard from, the silence those closes wait out. Apart
 * from {@link GatewayLink} because it runs whether a session is up or not, and only with channels
 * on chain. The chain is read off the loop ({@code executeBlocking}); otherwise on the link's event
 * loop only, and logs as the link.
 */
final class SettlementTicks {
    private static final Logger log = LoggerFactory.getLogger(GatewayLink.class);
    /**
     * How often, while no session is up, on-chain channels are checked for an uncooperative close
     * to start; the chain is watched for closes to answer or finish every WorkerPayments.watchEvery.
     */
    private static final long SETTLE_CHECK_MS = 500;

    private final GatewayLink link;
    private final Vertx vertx;
    private final SocketAddress gateway;
    private final WorkerPayments payments;
    /** This session's channel was said to be closing on chain (ChannelClosingOnChain): once per session. */
    private boolean closingSaid;
    /**
     * When the gateway last answered; the silence an uncooperative close waits out starts here.
     * On the settlement rules' clock ({@link WorkerPayments#now}), which measures that silence.
     */
    private Instant lastHeard;
    private long settleTimer = -1;
    private boolean settling;
    /** When the chain was last watched (System.nanoTime); set a watch back at start, so the first tick watches. */
    private long watchedAt;

    SettlementTicks(GatewayLink link, Vertx vertx, SocketAddress gateway, WorkerPayments payments) {
        this.link = link;
        this.vertx = vertx;
        this.gateway = gateway;
        this.payments = payments;
        this.lastHeard = payments.now();
    }

    /** Starts ticking, with channels on chain only. */
    void start() {
        if (payments.onChain()) {
            watchedAt = System.nanoTime() - payments.watchEvery().toNanos();
            settleTimer = vertx.setPeriodic(SETTLE_CHECK_MS, id -> settle());
        }
    }

    void stop() {
        if (settleTimer >= 0) {
            vertx.cancelTimer(settleTimer);
        }
    }

    /** The gateway sent a message. */
    void heard() {
        lastHeard = payments.now();
    }

    /** The session's channel changed (a new session, or a channel accepted on it): its close is not said yet. */
    void channelChanged() {
        closingSaid = false;
    }

    /**
     * Starts closes while the gateway is gone, and watches the chain for closes to answer or finish
     * every WorkerPayments.watchEvery, session or not; one check at a time (each reads the chain).
     */
    private void settle() {
        long now = System.nanoTime();
        boolean gatewayGone = link.session() == null;
        boolean watch = now - watchedAt >= payments.watchEvery().toNanos();
        if (settling || (!gatewayGone && !watch)) {
            return;
        }
        settling = true;
        if (watch) {
            watchedAt = now;
        }
        Instant since = lastHeard;
        vertx.executeBlocking(() -> {
            if (gatewayGone) {
                payments.settleWithoutGateway(since);
            }
            if (watch) {
                payments.watchChain();
            }
            return null;
        }).onComplete(done -> {
            settling = false;
            if (done.failed()) {
                log.warn("settling channels with gateway {} on chain failed; retrying", gateway, done.cause());
            } else if (link.session() != null && link.sessionChannel() != null) {
                // Said first, whether or not the worker leaves at once: a close nothing needs to
                // answer was started with the gateway's key all the same (review AA, AA-2).
                if (!closingSaid) {
                    sayClosing();
                }
                if (payments.leaves(link.sessionChannel())) {
                    leaveClosingChannel();
                }
            }
        });
    }

    /**
     * The session's channel closes on chain, started by the gateway's key, and nothing paid on it
     * can count any more: the session ends, and the next one is paid over a new channel (the
     * gateway does not reopen a channel that is no longer OPEN). Staying, the worker was routed
     * requests it could only refuse, for the whole quarantine (audit Z, Z-3).
     */
    private void leaveClosingChannel() {
        log.info("channel {} of gateway {} is closing on chain: ending the session, so that the next one is paid over a "
                + "new channel", link.sessionChannel(), gateway);
        link.endSessionHere();
    }

    /**
     * The session's channel closes on chain: the gateway is told at once, so that it routes no new
     * request here while the answer waits for its rounds, which this worker could only refuse
     * (audit Z2, N-2: a watch of 502s, which opened its circuit breaker), and learns of a close
     * started with its payer key outside its code.
     */
    private void sayClosing() {
        payments.closingOnChain(link.sessionChannel()).ifPresent(closing -> {
            closingSaid = true;
            link.session().write(WorkerMessage.newBuilder().setChannelClosingOnChain(closing).build());
        });
    }
}
