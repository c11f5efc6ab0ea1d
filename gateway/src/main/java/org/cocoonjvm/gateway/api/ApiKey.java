package org.cocoonjvm.gateway.api;

import org.cocoonjvm.gateway.limits.KeyLimits;

/**
 * A client API key, as configured: only its SHA-256 digest is kept (the map's key in
 * {@link org.cocoonjvm.gateway.GatewayOptions#apiKeys()}).
 *
 * @param id        a name safe to log (never the key itself)
 * @param accountId the billing account the key spends from
 * @param limits    per-key rate limits
 */
public record ApiKey(String id, String accountId, KeyLimits limits) {
    public ApiKey {
        if (id == null || id.isBlank() || accountId == null || accountId.isBlank()) {
            throw new IllegalArgumentException("an API key needs an id and an account");
        }
    }
}
