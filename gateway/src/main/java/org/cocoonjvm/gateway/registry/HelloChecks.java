package org.cocoonjvm.gateway.registry;

import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.common.GrpcStatus;
import java.net.URI;
import java.util.Map;
import org.cocoonjvm.protocol.PrintableIds;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.hello.HelloLimits;

import static org.cocoonjvm.gateway.registry.WorkerRegistry.SILENT_HEARTBEATS;

/**
 * What a worker's Hello must pass before {@link WorkerRegistry#register} adds it: a printable id,
 * models and a capacity within {@link HelloLimits}, an endpoint that parses, and an id and
 * endpoint that no other live worker holds. Apart from the registry so that the refusals (each a
 * {@link WorkerRefusedException} naming what is wrong) read in one place; it owns no state and
 * reads the registry's workers, from any thread.
 */
final class HelloChecks {
    /** The registry's workers, by id, live. */
    private final Map<String, RegisteredWorker> workers;

    HelloChecks(Map<String, RegisteredWorker> workers) {
        this.workers = workers;
    }

    /** {@link WorkerRegistry#register}'s checks, in order: the endpoint's address when they pass. */
    SocketAddress check(Hello hello) throws WorkerRefusedException {
        checkId(hello.getWorkerId());
        if (hello.getModelsCount() == 0) {
            throw WorkerRefusedException.invalid("invalid_hello", "the worker announced no models");
        }
        if (hello.getCapacity() == 0) {
            throw WorkerRefusedException.invalid("invalid_hello", "the worker announced capacity 0");
        }
        checkAnnounced("capacity", hello.getCapacity(), HelloLimits.MAX_CAPACITY);
        for (ModelRef m : hello.getModelsList()) {
            checkAnnounced("max_context of " + m.getName(), m.getMaxContext(), HelloLimits.MAX_CONTEXT);
            checkAnnounced("chat_template_tokens of " + m.getName(), m.getChatTemplateTokens(), HelloLimits.MAX_TEMPLATE_TOKENS);
            checkAnnounced("chat_message_tokens of " + m.getName(), m.getChatMessageTokens(), HelloLimits.MAX_TEMPLATE_TOKENS);
        }
        SocketAddress address = parseEndpoint(hello.getEndpoint());
        checkEndpointFree(hello, address);
        return address;
    }

    /** Past {@link HelloLimits}: a hold no client could meet, or routing arithmetic that overflows. */
    private static void checkAnnounced(String what, int value, long limit) throws WorkerRefusedException {
        if (Integer.toUnsignedLong(value) > limit) {
            throw WorkerRefusedException.invalid("invalid_hello", "the worker announced " + what + " "
                    + Integer.toUnsignedLong(value) + ", past the " + limit + " this gateway accepts");
        }
    }

    /** {@link WorkerRegistry#checkId}. */
    static void checkId(String id) throws WorkerRefusedException {
        if (id.isEmpty()) {
            throw WorkerRefusedException.invalid("invalid_hello", "worker_id is empty");
        }
        String problem = PrintableIds.problem(id, PrintableIds.MAX_WORKER_ID);
        if (problem != null) {
            throw WorkerRefusedException.invalid("invalid_hello", "worker_id " + problem);
        }
    }

    /** {@link WorkerRegistry#checkIdFree}. */
    void checkIdFree(Hello hello) throws WorkerRefusedException {
        RegisteredWorker holder = workers.get(hello.getWorkerId());
        if (holder != null && !sameWorker(holder.hello(), hello)) {
            throw idInUse(hello);
        }
        checkEndpointFree(hello, parseEndpoint(hello.getEndpoint()));
    }

    /**
     * The gateway sends a worker's requests to the endpoint its Hello names, and checks there only
     * that some acceptable worker answers: a second worker announcing a registered one's endpoint
     * was credited with its work (audit I, I-6). An endpoint is one worker's, as an id is.
     */
    private void checkEndpointFree(Hello hello, SocketAddress address) throws WorkerRefusedException {
        for (RegisteredWorker w : workers.values()) {
            // The same id is the id check's: the same worker reconnecting, or worker_id_in_use.
            if (w.address().equals(address) && !w.id().equals(hello.getWorkerId())) {
                throw new WorkerRefusedException(GrpcStatus.ALREADY_EXISTS, "endpoint_in_use", "endpoint " + hello.getEndpoint()
                        + " is registered by worker '" + w.id() + "'; each worker announces its own (--advertise), and one"
                        + " restarted under another id gets it once its old session ends (" + SILENT_HEARTBEATS + " heartbeat intervals)");
            }
        }
    }

    /** Whether {@code claimant} is the worker that registered {@code registered}: the same payment key. */
    static boolean sameWorker(Hello registered, Hello claimant) {
        return !claimant.getPaymentPublicKey().isEmpty() && claimant.getPaymentPublicKey().equals(registered.getPaymentPublicKey());
    }

    static WorkerRefusedException idInUse(Hello hello) {
        return new WorkerRefusedException(GrpcStatus.ALREADY_EXISTS, "worker_id_in_use", "worker id '" + hello.getWorkerId()
                + "' is in use by another worker (another payment key); pick another --id, or, if that was this worker"
                + " before a restart with a new payment key, it is free once the old session ends (" + SILENT_HEARTBEATS
                + " heartbeat intervals)");
    }

    private static SocketAddress parseEndpoint(String endpoint) throws WorkerRefusedException {
        URI uri;
        try {
            uri = URI.create(endpoint);
        } catch (IllegalArgumentException e) {
            throw WorkerRefusedException.invalid("invalid_hello", "endpoint is not a URI: " + endpoint);
        }
        // https: an attested worker serves RA-TLS; the gateway's client decides TLS, not the scheme.
        if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null || uri.getPort() <= 0) {
            throw WorkerRefusedException.invalid("invalid_hello", "endpoint must look like http(s)://host:port, got: " + endpoint);
        }
        return SocketAddress.inetSocketAddress(uri.getPort(), uri.getHost());
    }
}
