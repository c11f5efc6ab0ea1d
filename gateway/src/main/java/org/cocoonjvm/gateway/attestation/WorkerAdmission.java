package org.cocoonjvm.gateway.attestation;

import io.vertx.core.http.HttpConnection;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.protocol.grpc.Hello;

/** Decides, when a worker says Hello on a connection, whether it may register and with what attestation. */
@FunctionalInterface
public interface WorkerAdmission {
    /** @throws WorkerRefusedException the worker must not register (its admission recorded why); nothing is routed to it */
    AttestationState admit(Hello hello, HttpConnection connection) throws WorkerRefusedException;

    /** A gateway without attestation: every worker registers, none counts as attested. */
    WorkerAdmission UNATTESTED = (hello, connection) -> AttestationState.NONE;
}
