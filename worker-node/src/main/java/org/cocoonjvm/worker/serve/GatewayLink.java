package org.cocoonjvm.worker.serve;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.time.Instant;
import java.util.EnumSet;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.protocol.grpc.ChannelRefused;
import org.cocoonjvm.protocol.grpc.GatewayGrpcClient;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the worker registered with one gateway: opens the {@code Gateway.Session} stream, sends
 * Hello, then a load heartbeat at the interval the gateway asks for, and reconnects with backoff
 * when the session breaks. A gateway that cannot be reached, or keeps refusing, is logged when it
 * starts, again once a minute while it lasts, and at DEBUG for every retry in between: it may last
 * for hours (a worker started before its gateway), and a line every retry buried everything else.
 * Lives on one event loop; no method may be called from elsewhere.
 *
 * <p>Owns the session and its registration; its parts own the rest, each on the same loop:
 * {@link LinkProblems} (what the log says of failures), {@link PaymentIntake} (payments verified and
 * stored off the loop), {@link SessionCloses} (cooperative closes asked and sent, the shutdown close)
 * and {@link SettlementTicks} (the chain watched, closes started while the gateway is gone).
 */
final class GatewayLink {
    private static final Logger log = LoggerFactory.getLogger(GatewayLink.class);
    private static final long MAX_BACKOFF_MS = 5_000;
    /**
     * Refusals that may go away without anybody changing anything: the worker id or payment key
     * is held by a session the gateway has not yet seen die, the chain was unreachable, the
     * gateway is stopping. Any other refusal (a bad Hello, attestation, a missing payout address)
     * repeats until an operator acts.
     */
    private static final Set<GrpcStatus> SETTLES_ITSELF = EnumSet.of(GrpcStatus.ALREADY_EXISTS, GrpcStatus.UNAVAILABLE,
            GrpcStatus.RESOURCE_EXHAUSTED, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.CANCELLED);

    private final Vertx vertx;
    private final GrpcClient client;
    /** The RA-TLS transport under {@link #client}; null for plaintext. */
    private final HttpClient transport;
    private final SocketAddress gateway;
    private final Supplier<Hello> hello;
    private final Supplier<WorkerLoad> load;
    private final WorkerPayments payments;
    private final LinkProblems problems = new LinkProblems();
    private final PaymentIntake intake;
    private final SessionCloses closes;
    private final SettlementTicks ticks;
    private final Promise<Void> firstRegistration = Promise.promise();

    private GrpcClientRequest<WorkerMessage, GatewayMessage> session;
    /** The channel the session's requests are paid over (Registered's, then each next_channel's); null before one. */
    private ChannelId sessionChannel;
    /** Lets the requests waiting for the current session's channel go on (WorkerPayments.channelOpening). */
    private Runnable channelOpened = () -> { };
    private long heartbeatTimer = -1;
    private long backoffMs = 100;
    private boolean stopped;
    /** Whether the gateway registered this worker on the current session: its end is then a loss, not a failed try. */
    private boolean sessionUp;
    /**
     * This worker ended the current session itself, refusing its channel or leaving one that closes
     * on chain: its end was logged already, and it only retries.
     */
    private boolean endedHere;
    /** Read by /status from any thread. */
    private volatile Registration registration = Registration.connecting(null, null);

    /** @param transport the HTTP/2 client to reach the gateway with (RA-TLS); null for plaintext */
    GatewayLink(Vertx vertx, HttpClient transport, SocketAddress gateway, Supplier<Hello> hello, Supplier<WorkerLoad> load,
                BooleanSupplier draining, WorkerPayments payments) {
        this.payments = payments;
        this.ticks = new SettlementTicks(this, vertx, gateway, payments);
        this.vertx = vertx;
        this.transport = transport;
        this.client = transport == null ? GrpcClient.client(vertx) : GrpcClient.client(vertx, transport);
        this.gateway = gateway;
        this.hello = hello;
        this.load = load;
        this.closes = new SessionCloses(this, vertx, gateway, payments, draining);
        this.intake = new PaymentIntake(vertx, gateway, payments, closes::settleIfDue);
    }

    /**
     * Starts registering; the link keeps retrying for as long as it runs.
     *
     * @return completes when the gateway first accepts this worker; fails only when the link
     *         stopped before that
     */
    Future<Void> start() {
        ticks.start();
        connect();
        return firstRegistration.future();
    }

    /** Where the worker stands with the gateway now; any thread. */
    Registration registration() {
        return registration;
    }

    private void standing(Registration next) {
        registration = next.after(registration);
    }

    /** The current session; null between sessions. For the link's parts, on its loop. */
    GrpcClientRequest<WorkerMessage, GatewayMessage> session() {
        return session;
    }

    /** The channel the session's requests are paid over; null before one. For the link's parts, on its loop. */
    ChannelId sessionChannel() {
        return sessionChannel;
    }

    /** Whether stop() began. For the link's parts, on its loop. */
    boolean stopped() {
        return stopped;
    }

    private void connect() {
        if (stopped) {
            return;
        }
        Future<GrpcClientRequest<WorkerMessage, GatewayMessage>> opening;
        try {
            opening = client.request(gateway, GatewayGrpcClient.Session);
        } catch (IllegalStateException closed) {
            return;  // a retry timer fired while Vert.x was closing the client under this link
        }
        opening.onComplete(opened -> {
            if (opened.failed()) {
                lostUnanswered(opened.cause().getMessage());
                return;
            }
            GrpcClientRequest<WorkerMessage, GatewayMessage> request = opened.result();
            session = request;
            sessionChannel = null;
            endedHere = false;
            ticks.channelChanged();
            channelOpened = payments.channelOpening();
            request.write(WorkerMessage.newBuilder().setHello(hello.get()).build());
            request.response().onComplete(answered -> {
                if (answered.failed()) {
                    lostUnanswered(answered.cause().getMessage());
                    return;
                }
                GrpcClientResponse<WorkerMessage, GatewayMessage> response = answered.result();
                problems.answered();  // a gateway that answers is not the one dropping tries
                response.handler(this::onMessage)
                        .exceptionHandler(e -> lost(e.getMessage()))
                        .endHandler(v -> ended(response));
            });
        });
    }

    private void onMessage(GatewayMessage message) {
        ticks.heard();
        switch (message.getMessageCase()) {
            case REGISTERED -> {
                if (!message.getRegistered().hasChannel()) {
                    channelOpened.run();
                    registered(message.getRegistered().getHeartbeatIntervalMs());
                    return;
                }
                int heartbeatMs = message.getRegistered().getHeartbeatIntervalMs();
                acceptChannel(message.getRegistered().getChannel(), channelOpened, () -> {
                    registered(heartbeatMs);
                    closes.closeReplacedChannels();
                });
            }
            case NEXT_CHANNEL -> {
                ChannelId closing = sessionChannel;
                acceptChannel(message.getNextChannel(), () -> { }, () -> log.info("gateway {} pays over channel {} from"
                        + " now; channel {} closes once the requests running on it end", gateway, sessionChannel, closing));
            }
            case PAYMENT -> intake.received(message.getPayment());
            case CLOSE_SIGNED -> closes.closeSigned(message.getCloseSigned(), intake);
            default -> log.warn("ignoring unknown gateway message {}", message.getMessageCase());
        }
    }

    /**
     * Opens the channel {@code terms} offers (blocking on the chain's API: off the event loop) and
     * answers ChannelAccepted on the session it came on; then it is the channel the session's
     * requests are paid over. A refusal ends the session.
     *
     * @param opened runs once the open is done, whatever its outcome
     */
    private void acceptChannel(PaymentChannel terms, Runnable opened, Runnable accepted) {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = session;
        vertx.executeBlocking(() -> payments.open(terms)).onComplete(open -> {
            opened.run();
            if (current != session) {
                return;  // that session is gone; the next one registers again
            }
            if (open.failed()) {
                // Bad terms, a channel that is not what it claims on chain, one stored under
                // another gateway key, or an unreadable state file: serving unpaid is not an
                // option, so leave; the link retries with backoff.
                refuseChannel(terms, open.cause());
                return;
            }
            session.write(WorkerMessage.newBuilder().setChannelAccepted(open.result()).build());
            sessionChannel = ChannelId.fromBytes(terms.getChannelId().toByteArray());
            ticks.channelChanged();
            accepted.run();
        });
    }

    /**
     * The gateway offers the same channel at every retry, so the refusal repeats until an operator
     * acts: said once a minute, and the session's end that follows is part of it. Terms the worker
     * refuses (IllegalArgumentException, ChainException) are an answer, not a bug: no trace.
     */
    private void refuseChannel(PaymentChannel terms, Throwable cause) {
        String problem = "refusing the payment channel of gateway " + gateway + ": " + cause.getMessage();
        boolean expected = cause instanceof IllegalArgumentException || cause instanceof ChainException;
        // The gateway's operator is told why the terms are refused; a failure of the worker's own
        // (its disk, say) is its owner's business, and its log says it.
        String reason = expected ? cause.getMessage() : "the worker could not take it up (" + cause.getClass().getSimpleName()
                + "); its log says why";
        session.write(WorkerMessage.newBuilder().setChannelRefused(ChannelRefused.newBuilder()
                .setChannelId(terms.getChannelId()).setReason(String.valueOf(reason))).build());
        if (!problems.isNew(problem)) {
            log.debug("{}; again", problem);
        } else if (expected) {
            log.error("{}; retrying every {} ms, and logging this again only once a minute while it lasts", problem,
                    MAX_BACKOFF_MS);
        } else {
            log.error("{}; retrying every {} ms", problem, MAX_BACKOFF_MS, cause);
        }
        standing(new Registration(Registration.State.REFUSED, "channel_refused", problem, Instant.now()));
        endSessionHere();
    }

    /**
     * Ends the session from this side (refusing its channel, or leaving one that closes on chain):
     * its end is then logged already, and the next try waits the full backoff.
     */
    void endSessionHere() {
        endedHere = true;
        backoffMs = MAX_BACKOFF_MS;
        session.end();
    }

    private void registered(int heartbeatIntervalMs) {
        backoffMs = 100;
        sessionUp = true;
        problems.registered();
        standing(new Registration(Registration.State.REGISTERED, null, null, Instant.now()));
        long interval = Math.max(10, heartbeatIntervalMs);
        cancelHeartbeat();
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = session;
        heartbeatTimer = vertx.setPeriodic(interval, id -> {
            if (!current.writeQueueFull()) {
                current.write(WorkerMessage.newBuilder().setLoad(load.get()).build());
            }
        });
        log.info("registered with gateway {}", gateway);
        firstRegistration.tryComplete();
    }

    /**
     * The gateway ended the session. With an error status it refused this worker (or dropped it
     * for breaking the protocol), and the status message says why: that goes to the log, named
     * as a refusal, with a word on whether retrying can help.
     */
    private void ended(GrpcClientResponse<WorkerMessage, GatewayMessage> response) {
        if (endedHereAlready()) {
            return;
        }
        GrpcStatus status = response.status();
        if (stopped || status == null || status == GrpcStatus.OK) {
            lost("the gateway ended the session");
            return;
        }
        // The gateway's message starts with its reason code (e.g. "payout_address_invalid: ...").
        String why = response.statusMessage() == null ? "" : response.statusMessage();
        // The gateway is up and answered: the backoff that ramps up from 100 ms is for one that may
        // be back any moment. The same Hello gets the same answer until something changes, and
        // what settles itself takes seconds (an old session of this id or key noticed dead,
        // after 3 heartbeats): the ramp asked 7 times in 6 s.
        backoffMs = MAX_BACKOFF_MS;
        boolean settlesItself = SETTLES_ITSELF.contains(status);
        standing(new Registration(settlesItself ? Registration.State.CONNECTING : Registration.State.REFUSED,
                Registration.reasonOf(why, status.name().toLowerCase()), why, Instant.now()));
        if (!problems.isNew("refused " + status.name() + ": " + why)) {
            log.debug("gateway {} refused this worker again ({}): {}", gateway, status.name(), why);
        } else if (settlesItself) {
            log.warn("gateway {} refused this worker ({}): {}; retrying every {} ms, and logging this again only once a "
                    + "minute while it lasts", gateway, status.name(), why, MAX_BACKOFF_MS);
        } else {
            log.error("gateway {} refused this worker ({}): {}. Retrying cannot fix this: change this worker's settings"
                    + " or the gateway's policy; until then it retries every {} ms and logs this once a minute",
                    gateway, status.name(), why, MAX_BACKOFF_MS);
        }
        retry();
    }

    /**
     * The session failed before the gateway answered. An attested gateway refuses a worker outside
     * its policy in the TLS handshake, and a plaintext worker on its RA-TLS worker port, and TLS
     * carries no reason: the worker only sees its connection closed, so its log says where to look
     * once that has lasted longer than a gateway's start.
     */
    private void lostUnanswered(String why) {
        if (stoppedAlready()) {
            return;
        }
        notRegistered("unreachable", problems.unanswered(gateway, why, transport != null));
    }

    private void lost(String why) {
        if (endedHereAlready() || stoppedAlready()) {
            return;
        }
        if (sessionUp) {
            // Each loss follows a registration, so it is said every time: a gateway that keeps
            // dropping this worker should show in its log.
            log.warn("gateway session to {} lost ({}); reconnecting", gateway, why);
            standing(Registration.connecting("session_lost", "gateway session to " + gateway + " lost (" + why + ")"));
            retry();
        } else {
            notRegistered("session_ended", "gateway " + gateway + " ended the session before registering this worker (" + why + ")");
        }
    }

    /** The session this worker ended itself has ended: retries, saying nothing more. */
    private boolean endedHereAlready() {
        if (!endedHere) {
            return false;
        }
        endedHere = false;
        if (!stoppedAlready()) {
            retry();
        }
        return true;
    }

    /** Once stop() began, the session's end is the expected one: nothing to log or retry. */
    private boolean stoppedAlready() {
        if (!stopped) {
            return false;
        }
        cancelHeartbeat();
        session = null;
        closes.sessionGoneAtShutdown();
        return true;
    }

    /** A try to register failed without a refusal (the gateway is down, or unreachable from here). */
    private void notRegistered(String reason, String problem) {
        standing(Registration.connecting(reason, problem));
        if (problems.isNew(problem)) {
            log.warn("{}; retrying with backoff up to {} ms, and logging this again only once a minute while it lasts",
                    problem, MAX_BACKOFF_MS);
        } else {
            log.debug("{}; retrying in {} ms", problem, backoffMs);
        }
        retry();
    }

    private void retry() {
        payments.sessionEnded();
        sessionUp = false;
        cancelHeartbeat();
        session = null;
        vertx.setTimer(backoffMs, id -> connect());
        backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    }

    private void cancelHeartbeat() {
        if (heartbeatTimer >= 0) {
            vertx.cancelTimer(heartbeatTimer);
            heartbeatTimer = -1;
        }
    }

    /**
     * Closes the channel on chain when it owes more than dust (bounded: {@link SessionCloses#atShutdown}),
     * then ends the session, which deregisters the worker at once.
     */
    Future<Void> stop() {
        stopped = true;
        ticks.stop();
        firstRegistration.tryFail("the worker stopped before the gateway accepted it");
        return closes.atShutdown().eventually(() -> {
            cancelHeartbeat();
            if (session != null) {
                session.end();
            }
            return client.close().eventually(() -> transport == null ? Future.succeededFuture() : transport.close());
        });
    }
}
