package org.cocoonjvm.gateway;

import java.util.Set;

/**
 * Everything a gateway is configured with; validated once, never changed.
 *
 * @param host                 interface to bind
 * @param port                 one port for the OpenAI HTTP API and the gRPC services; 0 picks a free one
 * @param apiKeyHashes         SHA-256 hex digests of the client API keys ({@link org.cocoonjvm.protocol.openai.BearerKeys})
 * @param adminKeyHash         digest of the key for {@code /admin}
 * @param heartbeatIntervalMs  how often workers report their load
 * @param maxBodyBytes         larger request bodies get 413
 */
public record GatewayOptions(String host, int port, Set<String> apiKeyHashes, String adminKeyHash,
                             long heartbeatIntervalMs, long maxBodyBytes) {
    public GatewayOptions {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port out of range: " + port);
        }
        if (apiKeyHashes.isEmpty()) {
            throw new IllegalArgumentException("at least one API key is required");
        }
        if (adminKeyHash == null || adminKeyHash.isBlank()) {
            throw new IllegalArgumentException("an admin key is required");
        }
        if (heartbeatIntervalMs < 10 || maxBodyBytes < 1024) {
            throw new IllegalArgumentException("heartbeatIntervalMs must be >= 10 and maxBodyBytes >= 1024");
        }
        apiKeyHashes = Set.copyOf(apiKeyHashes);
    }
}
