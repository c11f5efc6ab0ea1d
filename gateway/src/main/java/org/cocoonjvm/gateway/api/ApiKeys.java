package org.cocoonjvm.gateway.api;

import java.util.Map;

/**
 * The client keys a gateway takes now, by the SHA-256 hex digest of the key
 * ({@link org.cocoonjvm.protocol.openai.BearerKeys#hash}). Replaced whole when its operator edits
 * them (the launcher's keys file); a request keeps the key it was admitted with, so revoking a
 * key refuses its next request and lets its running ones finish.
 */
public final class ApiKeys {
    private volatile Map<String, ApiKey> byDigest;

    public ApiKeys(Map<String, ApiKey> byDigest) {
        this.byDigest = Map.copyOf(byDigest);
    }

    /** The key with this digest; null for none, or for a null digest (no key sent). */
    public ApiKey find(String digest) {
        return digest == null ? null : byDigest.get(digest);
    }

    public Map<String, ApiKey> all() {
        return byDigest;
    }

    /** From now on, these keys and no others. */
    public void replace(Map<String, ApiKey> keys) {
        if (keys.isEmpty()) {
            throw new IllegalArgumentException("a gateway needs at least one client key");
        }
        byDigest = Map.copyOf(keys);
    }
}
