package org.cocoonjvm.gateway.registry;

import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import org.cocoonjvm.gateway.attestation.WorkerAdmission;
import org.cocoonjvm.gateway.attestation.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.GatewayGrpcService;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Registered;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's side of {@code Gateway.Session}: a worker is in the registry exactly while its
 * session stream is open.
 */
public final class SessionEndpoint {
    private static final Logger log = LoggerFactory.getLogger(SessionEndpoint.class);

    private final WorkerRegistry registry;
    private final WorkerAdmission admission;

    public SessionEndpoint(WorkerRegistry registry, WorkerAdmission admission) {
        this.registry = registry;
        this.admission = admission;
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
        private RegisteredWorker worker;
        private boolean closed;

        Session(GrpcServerRequest<WorkerMessage, GatewayMessage> call) {
            this.call = call;
        }

        void onMessage(WorkerMessage message) {
            switch (message.getMessageCase()) {
                case HELLO -> {
                    if (worker != null) {
                        close("refused: a session carries one Hello", GrpcStatus.INVALID_ARGUMENT, "a session carries one Hello");
                        return;
                    }
                    try {
                        worker = registry.register(message.getHello(), admission.admit(message.getHello(), call.connection()));
                    } catch (IllegalArgumentException e) {
                        close("refused: " + e.getMessage(), GrpcStatus.INVALID_ARGUMENT, e.getMessage());
                        return;
                    } catch (WorkerRefusedException e) {
                        close("refused: " + e.getMessage(), GrpcStatus.PERMISSION_DENIED, e.getMessage());
                        return;
                    }
                    log.info("worker {} registered from {} serving {}", worker.id(), worker.endpoint(),
                            worker.models().stream().map(m -> m.getName() + "@" + m.getHash()).toList());
                    call.response().write(GatewayMessage.newBuilder().setRegistered(
                            Registered.newBuilder().setHeartbeatIntervalMs((int) registry.heartbeatIntervalMs())).build());
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

        /** @param status how to end the response; null when the stream is already broken */
        void close(String why, GrpcStatus status, String statusMessage) {
            if (closed) {
                return;
            }
            closed = true;
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
