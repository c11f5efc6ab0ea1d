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
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.protocol.grpc.ChannelRefused;
import org.cocoonjvm.protocol.grpc.CloseRequest;
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
    /** A worker retrying against the same failure (unreachable, refused) logs it again only this often. */
    private static final Duration PROBLEM_LOG_EVERY = Duration.ofMinutes(1);
    /**
     * How long tries must have been dropped unanswered, one after another, before the log blames
     * attestation. A starting gateway's launcher holds its ports (and the kernel accepts into their
     * backlog) until the gateway listens, seconds later: every routine restart drops tries too, and
     * blamed attestation that no gateway here uses (audit Q, Q-6).
     */
    static final Duration DROPPED_BEFORE_ATTESTATION_HINT = Duration.ofSeconds(10);
    /**
     * How often, while no session is up, on-chain channels are checked for an uncooperative close
     * to start; the chain is watched for closes to answer or finish every WorkerPayments.watchEvery.
     */
    private static final long SETTLE_CHECK_MS = 500;

    private final Vertx vertx;
    private final GrpcClient client;
    /** The RA-TLS transport under {@link #client}; null for plaintext. */
    private final HttpClient transport;
    private final SocketAddress gateway;
    private final Supplier<Hello> hello;
    private final Supplier<WorkerLoad> load;
    /** The worker is stopping: it serves out its grace, then leaves. */
    private final BooleanSupplier draining;
    private final WorkerPayments payments;
    private final Promise<Void> firstRegistration = Promise.promise();

    private GrpcClientRequest<WorkerMessage, GatewayMessage> session;
    /** The channel the session's requests are paid over (Registered's, then each next_channel's); null before one. */
    private ChannelId sessionChannel;
    /** Lets the requests waiting for the current session's channel go on (WorkerPayments.channelOpening). */
    private Runnable channelOpened = () -> { };
    private long heartbeatTimer = -1;
    private long backoffMs = 100;
    /** Each channel's newest Payment not yet verified, in arrival order; empty when none waits. */
    private final Map<ChannelId, SignedSemiChannel> pendingPayments = new LinkedHashMap<>();
    /** A batch of payments is being verified and stored off the loop. */
    private boolean paying;
    /** What waits for the payments received so far to be stored ({@link #whenPaymentsStored}). */
    private final List<Runnable> afterPayments = new ArrayList<>();
    /** How long a stopping worker waits for its channel's cooperative close. */
    private static final Duration SHUTDOWN_CLOSE = Duration.ofSeconds(5);

    private boolean stopped;
    /** Whether the gateway registered this worker on the current session: its end is then a loss, not a failed try. */
    private boolean sessionUp;
    /** The last failure to register that was logged, and when: the same one is logged once a minute. */
    private String lastProblem;
    /** When the tries began to be dropped unanswered, one after another; null while they are not (see {@link #unreachable}). */
    private Instant droppedSince;
    private Instant lastProblemLogged = Instant.EPOCH;
    /**
     * This worker ended the current session itself, refusing its channel or leaving one that closes
     * on chain: its end was logged already, and it only retries.
     */
    private boolean endedHere;
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
    /** Set by stop(): done once the gateway's close signature was handled. */
    private Promise<Void> shutdownClose;
    /** Read by /status from any thread. */
    private volatile Registration registration = Registration.connecting(null, null);

    /** @param transport the HTTP/2 client to reach the gateway with (RA-TLS); null for plaintext */
    GatewayLink(Vertx vertx, HttpClient transport, SocketAddress gateway, Supplier<Hello> hello, Supplier<WorkerLoad> load,
                BooleanSupplier draining, WorkerPayments payments) {
        this.payments = payments;
        this.lastHeard = payments.now();
        this.vertx = vertx;
        this.transport = transport;
        this.client = transport == null ? GrpcClient.client(vertx) : GrpcClient.client(vertx, transport);
        this.gateway = gateway;
        this.hello = hello;
        this.load = load;
        this.draining = draining;
    }

    /**
     * Starts registering; the link keeps retrying for as long as it runs.
     *
     * @return completes when the gateway first accepts this worker; fails only when the link
     *         stopped before that
     */
    Future<Void> start() {
        if (payments.onChain()) {
            watchedAt = System.nanoTime() - payments.watchEvery().toNanos();
            settleTimer = vertx.setPeriodic(SETTLE_CHECK_MS, id -> settle());
        }
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
            closingSaid = false;
            channelOpened = payments.channelOpening();
            request.write(WorkerMessage.newBuilder().setHello(hello.get()).build());
            request.response().onComplete(answered -> {
                if (answered.failed()) {
                    lostUnanswered(answered.cause().getMessage());
                    return;
                }
                GrpcClientResponse<WorkerMessage, GatewayMessage> response = answered.result();
                droppedSince = null;  // a gateway that answers is not the one dropping tries
                response.handler(this::onMessage)
                        .exceptionHandler(e -> lost(e.getMessage()))
                        .endHandler(v -> ended(response));
            });
        });
    }

    private void onMessage(GatewayMessage message) {
        lastHeard = payments.now();
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
                    closeReplacedChannels();
                });
            }
            case NEXT_CHANNEL -> {
                ChannelId closing = sessionChannel;
                acceptChannel(message.getNextChannel(), () -> { }, () -> log.info("gateway {} pays over channel {} from"
                        + " now; channel {} closes once the requests running on it end", gateway, sessionChannel, closing));
            }
            case PAYMENT -> {
                // States are cumulative per channel, so of a burst that arrived together only each
                // channel's newest needs verifying: a signature check costs ~0.1 ms, and K = 1 can
                // send them faster. Per channel: a channel and the one replacing it are paid in the
                // same rounds, and the newest of the two dropped the other's last state.
                SignedSemiChannel state;
                try {
                    state = SignedSemiChannel.parse(message.getPayment().getSignedStateBoc().toByteArray());
                } catch (VoucherException e) {
                    log.warn("refused a payment from gateway {}: {}", gateway, e.getMessage());
                    return;
                }
                pendingPayments.put(state.channelId(), state);
                if (!paying) {
                    acceptPendingPayments();
                }
            }
            case CLOSE_SIGNED -> {
                GrpcClientRequest<WorkerMessage, GatewayMessage> current = session;
                ChannelId closedId = ChannelId.fromBytes(message.getCloseSigned().getChannelId().toByteArray());
                // After the payments that came before it: the close is checked against the latest state.
                whenPaymentsStored(() -> vertx.executeBlocking(() -> {
                    payments.closeSigned(message.getCloseSigned());
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
                    } else if (current == session && closedId.equals(sessionChannel)) {
                        current.end();
                    }
                }));
            }
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
            closingSaid = false;
            accepted.run();
        });
    }

    /**
     * A channel this gateway replaced while an earlier session closed it, which that session did
     * not see through: it gets no more payments to ask again at, so it asks now.
     */
    private void closeReplacedChannels() {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = session;
        ChannelId paidOver = sessionChannel;
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
        if (!newProblem(problem)) {
            log.debug("{}; again", problem);
        } else if (expected) {
            log.error("{}; retrying every {} ms, and logging this again only once a minute while it lasts", problem,
                    MAX_BACKOFF_MS);
        } else {
            log.error("{}; retrying every {} ms", problem, MAX_BACKOFF_MS, cause);
        }
        standing(new Registration(Registration.State.REFUSED, "channel_refused", problem, Instant.now()));
        endedHere = true;
        backoffMs = MAX_BACKOFF_MS;
        session.end();
    }

    /**
     * Verifies and stores the pending states off the event loop: a signature check and two fsyncs
     * each, which would hold up every stream on this loop. One batch at a time; what arrives
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
                done.result().forEach(this::settleIfDue);
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
    private void whenPaymentsStored(Runnable then) {
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

    /** Asks for the gateway's close signature once the channel owes enough (reads the chain: off the loop). */
    private void settleIfDue(SignedSemiChannel state) {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = session;
        vertx.executeBlocking(() -> payments.closeRequest(state.channelId())).onComplete(request -> {
            if (request.failed()) {
                log.warn("could not prepare the close of channel {}", state.channelId(), request.cause());
            } else if (request.result().isPresent()) {
                // A worker draining for its stop leaves: a next channel would lock a deposit for nothing.
                boolean serving = state.channelId().equals(sessionChannel) && !stopped && !draining.getAsBoolean();
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
        if (current != null && current == session) {
            current.write(WorkerMessage.newBuilder().setCloseRequest(request.toBuilder().setNextChannel(serving)).build());
        } else {
            payments.closeNotAsked(channel);
        }
    }

    private void registered(int heartbeatIntervalMs) {
        backoffMs = 100;
        sessionUp = true;
        lastProblem = null;
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
        if (!newProblem("refused " + status.name() + ": " + why)) {
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
        Instant now = Instant.now();
        if (!dropped(why, transport != null)) {
            droppedSince = null;
        } else if (droppedSince == null) {
            droppedSince = now;
        }
        notRegistered("unreachable", unreachable(gateway, why, transport != null,
                droppedSince == null ? Duration.ZERO : Duration.between(droppedSince, now)));
    }

    /**
     * Whether a try got a connection that was then dropped: what a TLS port does with plaintext,
     * an attested gateway with a worker it refuses in the handshake, and a starting gateway's held
     * port. A refused connection is a gateway that is down, not one that turns this worker away.
     */
    private static boolean dropped(String why, boolean tls) {
        String said = String.valueOf(why);
        return tls ? !said.contains("Connection refused") : said.contains("closed");
    }

    /**
     * The problem logged for a try the gateway did not answer. The hint at attestation comes only
     * once tries have been dropped for {@link #DROPPED_BEFORE_ATTESTATION_HINT}: sooner, a gateway
     * that is starting explains them as well.
     *
     * @param droppedFor how long tries have been dropped one after another; zero when this one was not
     */
    static String unreachable(SocketAddress gateway, String why, boolean tls, Duration droppedFor) {
        String unreachable = "could not reach gateway " + gateway + " (" + why;
        if (droppedFor.compareTo(DROPPED_BEFORE_ATTESTATION_HINT) < 0) {
            return unreachable + ")";
        }
        // Not the time itself: the problem's text must repeat for its log line to be said once a minute.
        String lasting = "; dropped for over " + DROPPED_BEFORE_ATTESTATION_HINT.toSeconds() + " s";
        if (tls) {
            return unreachable + lasting + ", so the gateway may have refused this worker's attestation in the TLS"
                    + " handshake: its /admin/workers lists the reason under refused)";
        }
        return unreachable + lasting + ": if " + gateway + " is an attested gateway's worker port,"
                + " this worker needs --attestation (the gateway lists it as tls_required under refused in /admin/workers))";
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
        if (shutdownClose != null) {
            shutdownClose.tryComplete();  // no gateway left to sign the close
        }
        return true;
    }

    /** A try to register failed without a refusal (the gateway is down, or unreachable from here). */
    private void notRegistered(String reason, String problem) {
        standing(Registration.connecting(reason, problem));
        if (newProblem(problem)) {
            log.warn("{}; retrying with backoff up to {} ms, and logging this again only once a minute while it lasts",
                    problem, MAX_BACKOFF_MS);
        } else {
            log.debug("{}; retrying in {} ms", problem, backoffMs);
        }
        retry();
    }

    /** True when {@code problem} is not the one last logged, or that was a minute ago; it then counts as logged now. */
    private boolean newProblem(String problem) {
        Instant now = Instant.now();
        if (problem.equals(lastProblem) && now.isBefore(lastProblemLogged.plus(PROBLEM_LOG_EVERY))) {
            return false;
        }
        lastProblem = problem;
        lastProblemLogged = now;
        return true;
    }

    private void retry() {
        payments.sessionEnded();
        sessionUp = false;
        cancelHeartbeat();
        session = null;
        vertx.setTimer(backoffMs, id -> connect());
        backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    }

    /**
     * Starts closes while the gateway is gone, and watches the chain for closes to answer or finish
     * every WorkerPayments.watchEvery, session or not; one check at a time (each reads the chain).
     */
    private void settle() {
        long now = System.nanoTime();
        boolean gatewayGone = session == null;
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
            } else if (session != null && sessionChannel != null) {
                // Said first, whether or not the worker leaves at once: a close nothing needs to
                // answer was started with the gateway's key all the same (review AA, AA-2).
                if (!closingSaid) {
                    sayClosing();
                }
                if (payments.leaves(sessionChannel)) {
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
                + "new channel", sessionChannel, gateway);
        endedHere = true;
        backoffMs = MAX_BACKOFF_MS;
        session.end();
    }

    /**
     * The session's channel closes on chain: the gateway is told at once, so that it routes no new
     * request here while the answer waits for its rounds, which this worker could only refuse
     * (audit Z2, N-2: a watch of 502s, which opened its circuit breaker), and learns of a close
     * started with its payer key outside its code.
     */
    private void sayClosing() {
        payments.closingOnChain(sessionChannel).ifPresent(closing -> {
            closingSaid = true;
            session.write(WorkerMessage.newBuilder().setChannelClosingOnChain(closing).build());
        });
    }

    private void cancelHeartbeat() {
        if (heartbeatTimer >= 0) {
            vertx.cancelTimer(heartbeatTimer);
            heartbeatTimer = -1;
        }
    }

    /**
     * Closes the channel on chain when it owes more than dust (bounded by {@link #SHUTDOWN_CLOSE}),
     * then ends the session, which deregisters the worker at once.
     */
    Future<Void> stop() {
        stopped = true;
        if (settleTimer >= 0) {
            vertx.cancelTimer(settleTimer);
        }
        firstRegistration.tryFail("the worker stopped before the gateway accepted it");
        return closeAtShutdown().eventually(() -> {
            cancelHeartbeat();
            if (session != null) {
                session.end();
            }
            return client.close().eventually(() -> transport == null ? Future.succeededFuture() : transport.close());
        });
    }

    /**
     * Asks the gateway to sign the close of each on-chain channel worth settling and sends it;
     * heartbeats go on meanwhile so the gateway keeps the session. Never fails: past the timeout the
     * worker leaves anyway, and a later start (or the uncooperative close) settles the channel.
     */
    private Future<Void> closeAtShutdown() {
        GrpcClientRequest<WorkerMessage, GatewayMessage> current = session;
        if (current == null || !payments.onChain()) {
            return Future.succeededFuture();
        }
        Promise<Void> closed = Promise.promise();
        shutdownClose = closed;
        vertx.executeBlocking(payments::closeRequestsAtShutdown).onComplete(requests -> {
            if (requests.failed()) {
                log.warn("could not prepare the shutdown close for gateway {}", gateway, requests.cause());
                closed.tryComplete();
            } else if (requests.result().isEmpty() || current != session) {
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
