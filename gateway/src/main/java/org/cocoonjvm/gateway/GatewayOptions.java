package org.cocoonjvm.gateway;

import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.transport.MessageLimits;

/**
 * Everything a gateway is configured with; validated once, never changed.
 *
 * @param host                 interface to bind
 * @param port                 one port for the OpenAI HTTP API and the gRPC services; 0 picks a free one
 * @param apiKeys              client keys by the SHA-256 hex digest of the key ({@link org.cocoonjvm.protocol.openai.BearerKeys})
 * @param adminKeyHash         digest of the key for {@code /admin}
 * @param heartbeatIntervalMs  how often workers report their load
 * @param maxBodyBytes         larger request bodies get 413; at most {@link MessageLimits#MAX_CLIENT_BODY_BYTES}
 * @param relay                timeouts, retries and buffering of relayed streams
 * @param payments             how workers are paid over payment channels
 * @param eventLoops           event loops serving clients, each with its own connections to the
 *                             workers, so that a request stays on one thread from client to worker
 *                             and back; about one per core
 * @param connections          how long a client connection may go without a request head, or without any request
 * @param shutdown             how a stop drains the gateway and lets its running streams finish
 * @param remoteUnattestedWorkers without attestation, register workers from other hosts too (by
 *                             default only loopback peers: see {@link org.cocoonjvm.gateway.attestation.WorkerAdmission#unattested})
 * @param dataDir              where the registry keeps what outlives a restart: the operator's cordons in
 *                             {@code cordons.json} ({@link org.cocoonjvm.gateway.registry.Cordons}), the models served
 *                             lately in {@code models.json} ({@link org.cocoonjvm.gateway.registry.ServedModels});
 *                             null keeps them in memory
 */
public record GatewayOptions(String host, int port, Map<String, ApiKey> apiKeys, String adminKeyHash,
                             long heartbeatIntervalMs, long maxBodyBytes, RelayOptions relay, PaymentOptions payments,
                             int eventLoops, ConnectionOptions connections, ShutdownOptions shutdown,
                             boolean remoteUnattestedWorkers, Path dataDir) {
    public GatewayOptions {
        Objects.requireNonNull(payments, "payments");
        Objects.requireNonNull(connections, "connections");
        Objects.requireNonNull(shutdown, "shutdown");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port out of range: " + port);
        }
        if (apiKeys.isEmpty()) {
            throw new IllegalArgumentException("at least one API key is required");
        }
        if (adminKeyHash == null || adminKeyHash.isBlank()) {
            throw new IllegalArgumentException("an admin key is required");
        }
        if (eventLoops < 1 || eventLoops > 1024) {
            throw new IllegalArgumentException("eventLoops must be between 1 and 1024, got " + eventLoops);
        }
        if (heartbeatIntervalMs < 10 || maxBodyBytes < 1024) {
            throw new IllegalArgumentException("heartbeatIntervalMs must be >= 10 and maxBodyBytes >= 1024");
        }
        if (maxBodyBytes > MessageLimits.MAX_CLIENT_BODY_BYTES) {
            // A larger body could make a request that no worker reads.
            throw new IllegalArgumentException("maxBodyBytes must be <= " + MessageLimits.MAX_CLIENT_BODY_BYTES
                    + ", got " + maxBodyBytes);
        }
        apiKeys = Map.copyOf(apiKeys);
    }
}
