package org.cocoonjvm.gateway.attestation;

import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.common.GrpcStatus;
import java.net.InetAddress;
import java.net.UnknownHostException;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.Hello;

/** Decides, when a worker says Hello on a connection, whether it may register and with what attestation. */
@FunctionalInterface
public interface WorkerAdmission {
    /** @throws WorkerRefusedException the worker must not register (its admission recorded why); nothing is routed to it */
    AttestationState admit(Hello hello, HttpConnection connection) throws WorkerRefusedException;

    /**
     * A gateway without attestation: no worker counts as attested, and by default only a worker on
     * this host (a loopback peer) registers. Nothing else tells a worker from anyone who reaches the
     * port, and a worker gets every prompt routed to it and is paid: one announcing a large capacity
     * would take all of a gateway's traffic (audit L, 3).
     *
     * @param remote admit workers from any address too: for a network where every host that can
     *               reach the gateway's port is trusted
     */
    static WorkerAdmission unattested(boolean remote) {
        return (hello, connection) -> {
            if (!remote && !loopback(connection.remoteAddress())) {
                throw new WorkerRefusedException(GrpcStatus.PERMISSION_DENIED, "unattested_remote_worker",
                        "this gateway runs without attestation, so it registers workers from its own host only: run it"
                        + " with --attestation (workers then prove what they run), or with --allow-unattested-remote-workers"
                        + " where every host that can reach its port is trusted");
            }
            return AttestationState.NONE;
        };
    }

    private static boolean loopback(SocketAddress peer) {
        if (peer == null || peer.hostAddress() == null) {
            return false;
        }
        try {
            return InetAddress.getByName(peer.hostAddress()).isLoopbackAddress();  // an IP literal: no lookup
        } catch (UnknownHostException notAnAddress) {
            return false;
        }
    }
}
