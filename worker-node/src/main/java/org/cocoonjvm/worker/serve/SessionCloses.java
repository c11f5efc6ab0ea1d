package org.cocoonjvm.worker.serve;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClientRequest;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cooperative closes {@link GatewayLink}'s session carries: asking the gateway to sign the close
 * of a channel that owes enough (after a payment, after a registration for the channels it
 * replaced, and at shutdown), and sending on chain the close it signs. Owns the shutdown close under
 * way; the session itself stays the link's, read through it, since a close is asked only on the
 * session that is current when its request is ready. Apart from the link because this is the
 * payments' side of the session and registering needs none of it. Reads the chain off the loop
 * ({@code executeBlocking}); otherwise on the link's event loop only, and logs as the link.
 */
final class SessionCloses {
    private static final Logger log = LoggerFactory.getLogger(GatewayLink.class);
    /** How long a stopping worker waits for its channel's cooperative close. */
    private static final Duration SHUTDOWN_CLOSE = Duration.ofSeconds(5);

    private final GatewayLink link;
    private final Vertx vertx;
    private final SocketAddress gateway;
    private final WorkerPayments payments;
    /** The worker is stopping: it serves out its grace, then leaves. */
    private final BooleanSupplier draining;
    /** Set by {@link #atShutdown}: done once the gateway's close signature was handled. */
    private Promise<Void> shutdownClose;

    SessionCloses(GatewayLink link, Vertx vertx, SocketAddress gateway, WorkerPayments payments, BooleanSupplier draining) {
        this.link = link;
        this.vertx = vertx;
        this.gateway = gateway;
        this.payments = payments;
        this.draining = draining;
    }

    /**
     * A CloseSigned arrived: it is sent on chain once the payments that came before it are stored,
     * since the close is checked against the latest state.
     */
    void closeSigned(CloseSigned signed, PaymentIntake intake) {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = link.session();
        ChannelId closedId = ChannelId.fromBytes(signed.getChannelId().toByteArray());
        intake.whenPaymentsStored(() -> vertx.executeBlocking(() -> {
            payments.closeSigned(signed);
            return null;
        }).onComplete(closed -> {
            if (closed.failed()) {
                log.error("the cooperative close of gateway {} failed", gateway, closed.cause());
            }
            // The gateway signs nothing more on that channel. When it was the session's, a
            // new session gets a new one; a replaced one's successor serves already. At
            // shutdown, stop() ends the session once the close is done.
            if (shutdownClose != null) {
                shutdownClose.tryComplete();
            } else if (current == link.session() && closedId.equals(link.sessionChannel())) {
                current.end();
            }
        }));
    }

    /**
     * A channel this gateway replaced while an earlier session closed it, which that session did
     * not see through: it gets no more payments to ask again at, so it asks now.
     */
    void closeReplacedChannels() {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = link.session();
        ChannelId paidOver = link.sessionChannel();
        if (!payments.onChain() || paidOver == null) {
            return;
        }
        vertx.executeBlocking(() -> payments.closeRequestsBesides(paidOver)).onComplete(requests -> {
            if (requests.failed()) {
                log.warn("could not prepare the close of the channels gateway {} replaced", gateway, requests.cause());
            } else {
                requests.result().forEach(request -> ask(current,
                        SignedSemiChannel.parse(request.getSignedStateBoc().toByteArray()).channelId(), request, false));
            }
        });
    }

    /** Asks for the gateway's close signature once the channel owes enough (reads the chain: off the loop). */
    void settleIfDue(SignedSemiChannel state) {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = link.session();
        vertx.executeBlocking(() -> payments.closeRequest(state.channelId())).onComplete(request -> {
            if (request.failed()) {
                log.warn("could not prepare the close of channel {}", state.channelId(), request.cause());
            } else if (request.result().isPresent()) {
                // A worker draining for its stop leaves: a next channel would lock a deposit for nothing.
                boolean serving = state.channelId().equals(link.sessionChannel()) && !link.stopped()
                        && !draining.getAsBoolean();
                ask(current, state.channelId(), request.result().get(), serving);
            }
        });
    }

    /**
     * Sends {@code request}, the close of {@code channel}, on {@code current} if it is still the
     * session; else it is asked again later.
     *
     * @param serving the channel is the session's own and this worker goes on serving: the gateway opens
     *                the next one first
     */
    private void ask(GrpcClientRequest<WorkerMessage, GatewayMessage> current, ChannelId channel, CloseRequest request,
                     boolean serving) {
        if (current != null && current == link.session()) {
            current.write(WorkerMessage.newBuilder().setCloseRequest(request.toBuilder().setNextChannel(serving)).build());
        } else {
            payments.closeNotAsked(channel);
        }
    }

    /**
     * The session ended while the worker stopped: no gateway is left to sign the shutdown close,
     * which is then done.
     */
    void sessionGoneAtShutdown() {
        if (shutdownClose != null) {
            shutdownClose.tryComplete();
        }
    }

    /**
     * Asks the gateway to sign the close of each on-chain channel worth settling and sends it;
     * heartbeats go on meanwhile so the gateway keeps the session. Never fails: past
     * {@link #SHUTDOWN_CLOSE} the worker leaves anyway, and a later start (or the uncooperative
     * close) settles the channel.
     */
    Future<Void> atShutdown() {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = link.session();
        if (current == null || !payments.onChain()) {
            return Future.succeededFuture();
        }
        Promise<Void> closed = Promise.promise();
        shutdownClose = closed;
        vertx.executeBlocking(payments::closeRequestsAtShutdown).onComplete(requests -> {
            if (requests.failed()) {
                log.warn("could not prepare the shutdown close for gateway {}", gateway, requests.cause());
                closed.tryComplete();
            } else if (requests.result().isEmpty() || current != link.session()) {
                closed.tryComplete();
            } else {
                log.info("asking gateway {} to close {} channel(s) on chain before leaving", gateway, requests.result().size());
                requests.result().forEach(r -> current.write(WorkerMessage.newBuilder().setCloseRequest(r).build()));
            }
        });
        return closed.future().timeout(SHUTDOWN_CLOSE.toMillis(), TimeUnit.MILLISECONDS).recover(e -> {
            log.warn("leaving gateway {} without closing its channel on chain: {}", gateway, e.getMessage());
            return Future.succeededFuture();
        });
    }
}
