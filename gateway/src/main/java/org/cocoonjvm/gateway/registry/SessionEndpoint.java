package org.cocoonjvm.gateway.registry;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import java.util.function.Consumer;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.gateway.attestation.AttestationState;
import org.cocoonjvm.gateway.attestation.WorkerAdmission;
import org.cocoonjvm.gateway.attestation.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.GatewayGrpcService;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.Registered;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's side of {@code Gateway.Session}: a worker is in the registry exactly while its
 * session stream is open. With payments on, its payment channel is opened before it is
 * registered, its signed initial state is checked when it arrives, and the channel's payments go
 * out on the same stream.
 */
public final class SessionEndpoint {
    private static final Logger log = LoggerFactory.getLogger(SessionEndpoint.class);

    private final WorkerRegistry registry;
    private final WorkerAdmission admission;
    private final ChannelBilling payments;

    /**
     * @param admission checks the worker's attestation before anything else
     * @param payments  pays the workers; null when payments are disabled
     */
    public SessionEndpoint(WorkerRegistry registry, WorkerAdmission admission, ChannelBilling payments) {
        this.registry = registry;
        this.admission = admission;
        this.payments = payments;
    }

    public void bind(GrpcServer server) {
        server.callHandler(GatewayGrpcService.Session, this::session);
    }

    private void session(GrpcServerRequest<WorkerMessage, GatewayMessage> call) {
        Session session = new Session(call);
        call.handler(session::onMessage);
        call.endHandler(v -> session.close("session ended", GrpcStatus.OK, null));
        call.exceptionHandler(e -> session.close("session broke: " + e.getMessage(), null, null));
    }

    /** One worker's registration; lives on the session's event loop. */
    private final class Session {
        private final GrpcServerRequest<WorkerMessage, GatewayMessage> call;
        private final Context context = Vertx.currentContext();
        /** Sends on this session from any thread (the billing verticle pays from its own). */
        private final Consumer<GatewayMessage> send;
        private boolean helloSeen;
        private RegisteredWorker worker;
        private WorkerChannel channel;
        private boolean closed;

        Session(GrpcServerRequest<WorkerMessage, GatewayMessage> call) {
            this.call = call;
            this.send = message -> context.runOnContext(v -> {
                if (!closed) {
                    call.response().write(message);
                }
            });
        }

        void onMessage(WorkerMessage message) {
            switch (message.getMessageCase()) {
                case HELLO -> {
                    if (helloSeen) {
                        close("refused: a session carries one Hello", GrpcStatus.INVALID_ARGUMENT, "a session carries one Hello");
                        return;
                    }
                    helloSeen = true;
                    Hello hello = message.getHello();
                    AttestationState attestation;
                    try {
                        attestation = admission.admit(hello, call.connection());
                    } catch (WorkerRefusedException e) {
                        close("refused: " + e.getMessage(), GrpcStatus.PERMISSION_DENIED, e.getMessage());
                        return;
                    }
                    if (payments == null) {
                        register(hello, attestation, null, Registered.newBuilder());
                        return;
                    }
                    payments.open(hello, send, opened -> {
                        if (opened.failed()) {
                            close("refused: " + opened.cause().getMessage(), GrpcStatus.INVALID_ARGUMENT, opened.cause().getMessage());
                        } else if (closed) {
                            payments.detach(opened.result().channel(), send);
                        } else {
                            channel = opened.result().channel();
                            register(hello, attestation, channel, Registered.newBuilder().setChannel(opened.result().terms()));
                        }
                    });
                }
                case CHANNEL_ACCEPTED -> {
                    if (channel == null) {
                        close("refused: ChannelAccepted without a channel", GrpcStatus.INVALID_ARGUMENT,
                                "ChannelAccepted answers Registered.channel, and this session has none");
                        return;
                    }
                    payments.accepted(channel, message.getChannelAccepted().getSignedStateBoc(), checked -> {
                        if (checked.failed()) {
                            close("refused: " + checked.cause().getMessage(), GrpcStatus.INVALID_ARGUMENT, checked.cause().getMessage());
                        }
                    });
                }
                case CLOSE_REQUEST -> {
                    if (channel == null) {
                        close("refused: CloseRequest without a channel", GrpcStatus.INVALID_ARGUMENT,
                                "CloseRequest needs the channel of Registered, and this session has none");
                        return;
                    }
                    payments.closeRequested(channel, message.getCloseRequest(), signed -> {
                        if (signed.failed()) {
                            close("refused: " + signed.cause().getMessage(), GrpcStatus.INVALID_ARGUMENT,
                                    signed.cause().getMessage());
                        } else if (!closed) {
                            call.response().write(GatewayMessage.newBuilder().setCloseSigned(signed.result()).build());
                        }
                    });
                }
                case LOAD -> {
                    if (worker == null) {
                        close("refused: Load before Hello", GrpcStatus.INVALID_ARGUMENT, "the first message of a session must be a Hello");
                        return;
                    }
                    registry.heartbeat(worker, message.getLoad());
                }
                default -> close("refused: unknown message", GrpcStatus.INVALID_ARGUMENT, "unknown message " + message.getMessageCase());
            }
        }

        private void register(Hello hello, AttestationState attestation, WorkerChannel paidBy, Registered.Builder registered) {
            try {
                worker = registry.register(hello, attestation, paidBy);
            } catch (IllegalArgumentException e) {
                close("refused: " + e.getMessage(), GrpcStatus.INVALID_ARGUMENT, e.getMessage());
                return;
            }
            log.info("worker {} registered from {} serving {}{}", worker.id(), worker.endpoint(),
                    worker.models().stream().map(m -> m.getName() + "@" + m.getHash()).toList(),
                    paidBy == null ? "" : ", paid over channel " + paidBy.id());
            call.response().write(GatewayMessage.newBuilder().setRegistered(
                    registered.setHeartbeatIntervalMs((int) registry.heartbeatIntervalMs())).build());
        }

        /** @param status how to end the response; null when the stream is already broken */
        void close(String why, GrpcStatus status, String statusMessage) {
            if (closed) {
                return;
            }
            closed = true;
            if (channel != null) {
                payments.detach(channel, send);
            }
            if (worker != null) {
                registry.remove(worker);
                log.info("worker {} deregistered ({})", worker.id(), why);
            } else if (status != GrpcStatus.OK) {
                log.warn("worker session {}", why);
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
