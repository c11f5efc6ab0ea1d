package org.cocoonjvm.gateway.registry;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.cocoonjvm.gateway.attestation.AttestationState;
import org.cocoonjvm.gateway.attestation.RefusedWorkers;
import org.cocoonjvm.gateway.attestation.WorkerAdmission;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.protocol.PrintableIds;
import org.cocoonjvm.protocol.grpc.ChannelAccepted;
import org.cocoonjvm.protocol.grpc.ChannelClosingOnChain;
import org.cocoonjvm.protocol.grpc.ChannelRefused;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.GatewayGrpcService;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.Registered;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's side of {@code Gateway.Session}: a worker is in the registry exactly while its
 * session stream is open. With payments on, its payment channel is opened before it is
 * registered, its signed initial state is checked when it arrives, and the channel's payments go
 * out on the same stream; a worker closing its channel while it serves is offered the next one
 * on the same stream, and paid over it once it accepts. A refused worker is told why (the status, its message and the
 * reason code at the head of the message), listed in {@link RefusedWorkers}, and logged
 * with its id, at most once a minute for the same refusal.
 */
public final class SessionEndpoint {
    private static final Logger log = LoggerFactory.getLogger(SessionEndpoint.class);

    private final WorkerRegistry registry;
    private final WorkerAdmission admission;
    private final ChannelBilling payments;
    private final RefusedWorkers refused;
    /** Sessions not closed yet, on their own event loops. */
    private final Set<Session> open = ConcurrentHashMap.newKeySet();
    private volatile boolean stopping;

    /**
     * @param admission checks the worker's attestation before anything else (and records its own refusals)
     * @param payments  pays the workers; null when payments are disabled
     * @param refused   where every other refusal at Hello is listed
     */
    public SessionEndpoint(WorkerRegistry registry, WorkerAdmission admission, ChannelBilling payments,
                           RefusedWorkers refused) {
        this.registry = registry;
        this.admission = admission;
        this.payments = payments;
        this.refused = refused;
    }

    public void bind(GrpcServer server) {
        server.callHandler(GatewayGrpcService.Session, this::session);
    }

    private void session(GrpcServerRequest<WorkerMessage, GatewayMessage> call) {
        Session session = new Session(call);
        call.handler(session::onMessage);
        call.endHandler(v -> session.close("session ended", GrpcStatus.OK, null));
        call.exceptionHandler(e -> session.close("session broke: " + e.getMessage(), null, null));
        // A worker's cancel (an HTTP/2 reset) comes here, not to the exception handler; its stream takes no status after it.
        call.errorHandler(e -> session.close("session reset (" + e + ")", null, null));
        // Added before stopping is read, as closeAll sets it before it reads the set: one of them sees the other.
        open.add(session);
        if (stopping) {
            session.close(STOPPING, GrpcStatus.OK, null);
        }
    }

    /**
     * Ends every session, and any that opens from now on, with status OK: the worker reconnects,
     * to whichever gateway is up, as when a session is lost. A stopping gateway calls it once its
     * last payment round went out, so that those states reach their workers before the sessions
     * end. Completes once each has ended on its own event loop.
     */
    public Future<Void> closeAll() {
        stopping = true;
        List<Future<Void>> closed = new ArrayList<>();
        for (Session session : open) {
            Promise<Void> ended = Promise.promise();
            session.context.runOnContext(v -> {
                try {
                    session.close(STOPPING, GrpcStatus.OK, null);
                } finally {
                    ended.complete();  // the stop goes on whatever one session did
                }
            });
            closed.add(ended.future());
        }
        return Future.all(closed).mapEmpty();
    }

    private static final String STOPPING = "the gateway is stopping";
    /** The reason code of a worker's refusal of its channel, in {@link RefusedWorkers}. */
    static final String CHANNEL_REFUSED = "channel_refused";
    /** A worker's reason as the gateway shows it: enough for the terms it names. */
    private static final int MAX_REASON_CHARS = 400;

    /** One worker's registration; lives on the session's event loop. */
    private final class Session {
        private final GrpcServerRequest<WorkerMessage, GatewayMessage> call;
        private final Context context = Vertx.currentContext();
        /** Sends on this session from any thread (the billing verticle pays from its own). */
        private final Consumer<GatewayMessage> send;
        private boolean helloSeen;
        /** Set by the session's Hello. */
        private Hello hello;
        private RegisteredWorker worker;
        /** The channel new requests are paid over. */
        private WorkerChannel channel;
        /** The channel offered to replace {@link #channel}, until the worker accepts it; null otherwise. */
        private WorkerChannel next;
        /** The close of {@link #channel} that waits for its replacement; null otherwise. */
        private CloseRequest replacing;
        /** How this session's end leaves the registry: the worker has its channel's close, and said it comes straight back. */
        private WorkerRegistry.Departure departure = WorkerRegistry.Departure.GONE;
        private boolean closed;

        Session(GrpcServerRequest<WorkerMessage, GatewayMessage> call) {
            this.call = call;
            this.send = message -> context.runOnContext(v -> {
                if (!closed) {
                    call.response().write(message);
                }
            });
        }

        /** The registration's state machine: one transition per message. */
        void onMessage(WorkerMessage message) {
            switch (message.getMessageCase()) {
                case HELLO -> onHello(message.getHello());
                case CHANNEL_ACCEPTED -> onChannelAccepted(message.getChannelAccepted());
                case CLOSE_REQUEST -> onCloseRequest(message.getCloseRequest());
                case LOAD -> onLoad(message.getLoad());
                case CHANNEL_REFUSED -> onChannelRefused(message.getChannelRefused());
                case CHANNEL_CLOSING_ON_CHAIN -> onChannelClosingOnChain(message.getChannelClosingOnChain());
                default -> close("refused: unknown message", GrpcStatus.INVALID_ARGUMENT, "unknown message " + message.getMessageCase());
            }
        }

        /** Admits the worker, opens its payment channel when payments are on, then registers it. */
        private void onHello(Hello received) {
            if (helloSeen) {
                close("refused: a session carries one Hello", GrpcStatus.INVALID_ARGUMENT, "a session carries one Hello");
                return;
            }
            helloSeen = true;
            hello = received;
            AttestationState attestation;
            try {
                WorkerRegistry.checkId(hello.getWorkerId());
                attestation = admission.admit(hello, call.connection());
                registry.checkIdFree(hello);
            } catch (WorkerRefusedException e) {
                refuse(e);
                return;
            }
            if (payments == null) {
                register(attestation, null, Registered.newBuilder());
                return;
            }
            payments.open(hello, send, opened -> {
                if (opened.failed()) {
                    refuse(opened.cause() instanceof WorkerRefusedException e ? e
                            : new WorkerRefusedException(GrpcStatus.UNAVAILABLE, "channel_unavailable",
                                    "the payment channel could not be opened: " + opened.cause().getMessage()));
                } else if (closed) {
                    payments.detach(send);
                } else {
                    channel = opened.result().channel();
                    register(attestation, channel, Registered.newBuilder().setChannel(opened.result().terms()));
                }
            });
        }

        /** The worker's signed initial state of its channel, or of the next one offered: once checked, a next one takes over. */
        private void onChannelAccepted(ChannelAccepted message) {
            if (channel == null) {
                close("refused: ChannelAccepted without a channel", GrpcStatus.INVALID_ARGUMENT,
                        "ChannelAccepted answers Registered.channel, and this session has none");
                return;
            }
            WorkerChannel accepting = next != null ? next : channel;
            payments.accepted(accepting, message.getSignedStateBoc(), checked -> {
                if (checked.failed()) {
                    close("refused: " + checked.cause().getMessage(), GrpcStatus.INVALID_ARGUMENT, checked.cause().getMessage());
                } else if (accepting == next && !closed) {
                    switchTo(next);
                } else if (accepting == channel && !closed && worker != null) {
                    servesNow();
                }
            });
        }

        /**
         * The worker took its channel (or needs none): its earlier refusals from this host no longer
         * say its state. Not at registration itself: a worker that then refuses its channel is
         * registered on every try, and its refusal's row, dropped each time, would never count its
         * tries nor be logged only once a minute.
         */
        private void servesNow() {
            refused.registered(String.valueOf(call.connection().remoteAddress()), worker.id());
        }

        /**
         * The worker will not be paid over the channel offered, and ends the session; it will come
         * back with the same refusal until someone acts, so it is listed where the operator looks
         * for workers that cannot serve, and logged once a minute.
         */
        private void onChannelRefused(ChannelRefused message) {
            if (channel == null) {
                close("refused: ChannelRefused without a channel", GrpcStatus.INVALID_ARGUMENT,
                        "ChannelRefused answers Registered.channel or next_channel, and this session has none");
                return;
            }
            String offered = HexFormat.of().formatHex(message.getChannelId().toByteArray());
            String reason = "the worker refused payment channel " + PrintableIds.oneLine(offered, 32) + ": "
                    + PrintableIds.oneLine(message.getReason(), MAX_REASON_CHARS);
            String remote = String.valueOf(call.connection().remoteAddress());
            if (refused.add(remote, shownId(), CHANNEL_REFUSED, reason, null, null)) {
                log.warn("worker '{}' from {} refused its payment channel ({}): {}", shownId(), remote, CHANNEL_REFUSED, reason);
            }
            close("it refused its payment channel", GrpcStatus.OK, null);
        }

        /**
         * The worker's channel closes on chain by an uncooperative close: routing skips the worker
         * while that channel pays it. Only the session's own channel, or the next one it is taking
         * up (the worker counts it its own from its ChannelAccepted): another's routes nothing less.
         */
        private void onChannelClosingOnChain(ChannelClosingOnChain message) {
            WorkerChannel named = channel != null && channel.idBytes().equals(message.getChannelId()) ? channel
                    : next != null && next.idBytes().equals(message.getChannelId()) ? next : null;
            if (named == null) {
                close("refused: ChannelClosingOnChain for a channel that is not the session's", GrpcStatus.INVALID_ARGUMENT,
                        "ChannelClosingOnChain names the session's channel");
                return;
            }
            payments.closingOnChain(named, worker == null ? shownId() : worker.id(), message.getStartedByGatewayKey());
        }

        /** The worker closes its channel: replaced by a next one first when it goes on serving, else closed. */
        private void onCloseRequest(CloseRequest request) {
            if (channel == null) {
                close("refused: CloseRequest without a channel", GrpcStatus.INVALID_ARGUMENT,
                        "CloseRequest needs the channel of Registered, and this session has none");
                return;
            }
            if (replacing == null && payments.replaces(channel, request)) {
                replace(request);
            } else {
                closeChannel(request);
            }
        }

        /** A registered worker's heartbeat. */
        private void onLoad(WorkerLoad load) {
            if (worker == null) {
                close("refused: Load before Hello", GrpcStatus.INVALID_ARGUMENT, "the first message of a session must be a Hello");
                return;
            }
            registry.heartbeat(worker, load);
        }

        /**
         * The worker closes its channel and goes on serving: its next channel is opened and offered
         * first, and the close waits for the worker to accept it ({@link #switchTo}), so the worker
         * takes requests throughout. Without a next channel (the chain could not open one) the
         * channel closes as a leaving worker's does: no new request until its next session.
         */
        private void replace(CloseRequest request) {
            replacing = request;
            WorkerChannel closing = channel;
            payments.replace(closing, hello, send, opened -> {
                if (closed) {
                    payments.detach(send);
                } else if (opened.failed()) {
                    log.warn("could not open the channel to replace channel {} of worker {} ({}): closing it without one;"
                            + " the worker takes no new requests until its next session", closing.id(), worker.id(),
                            opened.cause().getMessage());
                    replacing = null;
                    closeChannel(request);
                } else {
                    next = opened.result().channel();
                    call.response().write(GatewayMessage.newBuilder().setNextChannel(opened.result().terms()).build());
                }
            });
        }

        /** The worker accepted {@code accepted}: new requests are paid over it, and the channel it replaces closes. */
        private void switchTo(WorkerChannel accepted) {
            WorkerChannel old = channel;
            CloseRequest request = replacing;
            channel = accepted;
            next = null;
            replacing = null;
            worker.paidBy(accepted);
            log.info("worker {} is paid over channel {} from now; channel {} closes once the requests running on it end",
                    worker.id(), accepted.id(), old.id());
            closeChannel(request);
        }

        /** Signs the close {@code request} asks for once its channel drained, and sends it on this session. */
        private void closeChannel(CloseRequest request) {
            payments.closeRequested(channel, send, request, signed -> {
                if (signed.failed()) {
                    close("refused: " + signed.cause().getMessage(), GrpcStatus.INVALID_ARGUMENT,
                            signed.cause().getMessage());
                } else if (!closed) {
                    call.response().write(GatewayMessage.newBuilder().setCloseSigned(signed.result().close()).build());
                    payments.closeDelivered(signed.result().channel());
                    if (signed.result().channel() == channel && request.getNextChannel()) {
                        departure = WorkerRegistry.Departure.RETURNING;  // it ends this session for its next channel
                    }
                } else {
                    payments.closeUndelivered(signed.result().channel());
                }
            });
        }

        private void register(AttestationState attestation, WorkerChannel paidBy, Registered.Builder registered) {
            try {
                worker = registry.register(hello, attestation, paidBy);
            } catch (WorkerRefusedException e) {
                refuse(e);
                return;
            }
            if (paidBy == null) {
                servesNow();
            }
            // The endpoint is what the worker announced; the peer is where its session really comes from (audit L, 10).
            log.info("worker {} registered from {} (endpoint {}) serving {}{}", worker.id(), call.connection().remoteAddress(),
                    worker.endpoint(),
                    worker.models().stream().map(ModelKeys::id).toList(),
                    paidBy == null ? "" : ", paid over channel " + paidBy.id());
            call.response().write(GatewayMessage.newBuilder().setRegistered(
                    registered.setHeartbeatIntervalMs((int) registry.heartbeatIntervalMs())).build());
        }

        /** Ends the session with the refusal's status, message and code; lists it, and logs it once a minute. */
        private void refuse(WorkerRefusedException e) {
            String remote = String.valueOf(call.connection().remoteAddress());
            String id = shownId();
            if (refused.add(remote, id, e.code(), e.getMessage(), e.tee(), e.imageHash())) {
                SessionEndpoint.log.warn("worker '{}' from {} refused ({}): {}", id, remote, e.code(), e.getMessage());
            }
            close(null, e.status(), e.code() + ": " + e.getMessage());
        }

        /**
         * The Hello's worker id as a log line may show it: as it is when {@link WorkerRegistry#checkId}
         * takes it, else as JSON and cut short, since its newlines would start forged lines.
         */
        private String shownId() {
            String id = hello.getWorkerId();
            return PrintableIds.problem(id, PrintableIds.MAX_WORKER_ID) == null ? id : ApiException.shown(id);
        }

        /**
         * @param why    for the log; null when the caller logged it
         * @param status how to end the response; null when the stream is already broken
         */
        void close(String why, GrpcStatus status, String statusMessage) {
            if (closed) {
                return;
            }
            closed = true;
            open.remove(this);
            if (channel != null) {
                payments.detach(send);
            }
            if (worker != null) {
                registry.remove(worker, departure);
                log.info("worker {} deregistered ({})", worker.id(), why);
            } else if (why != null && status != GrpcStatus.OK) {
                log.warn("worker session{} from {} {}", hello == null ? "" : " of '" + shownId() + "'",
                        call.connection().remoteAddress(), why);
            }
            if (status != null) {
                if (statusMessage != null) {
                    call.response().statusMessage(statusMessage);
                }
                call.response().status(status).end();
            }
        }
    }
}
