package org.cocoonjvm.load;

import java.net.URI;

/**
 * Where load goes: an OpenAI-compatible base URL (the gateway, or a worker's own endpoint), its
 * bearer key, and the model to ask for.
 */
public record Target(URI baseUrl, String apiKey, String model) {
    public Target {
        if (baseUrl == null || !"http".equals(baseUrl.getScheme()) || baseUrl.getHost() == null) {
            throw new ScenarioException("the target URL must be http://host[:port], got " + baseUrl);
        }
        if (apiKey == null || apiKey.isBlank()) {
            throw new ScenarioException("an API key is required");
        }
    }

    public int port() {
        return baseUrl.getPort() > 0 ? baseUrl.getPort() : 80;
    }
}
