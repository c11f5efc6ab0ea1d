package org.cocoonjvm.worker.forward;

import java.net.URI;
import org.cocoonjvm.worker.engine.ModelInfo;

/**
 * @param upstream       base URL of the OpenAI-compatible server beside the worker, e.g.
 *                       {@code http://127.0.0.1:8000}; the OpenAI clients' form with {@code /v1}
 *                       is taken too and stored without it, as the forwarder adds {@code /v1/…} itself
 * @param upstreamModel  the model name that server expects
 * @param upstreamApiKey bearer key for it; null when it needs none
 * @param identity       what the worker announces: name clients use, and the hash of the model files
 * @param maxConcurrent  requests forwarded at once; more are refused (the gateway routes elsewhere)
 * @param connectTimeoutMs how long the upstream may take to answer with a status
 * @param idleTimeoutMs  how long a stream under way may go without a byte from the upstream before
 *                       it fails as the upstream's fault (a stalled server would hold the client forever)
 * @param runningUsage  ask the upstream for its counts on every chunk ({@code continuous_usage_stats},
 *                      vLLM's and SGLang's, and {@code timings_per_token}, llama.cpp's), so that a
 *                      stream cut short bills exactly what was forwarded; off for a server that
 *                      rejects unknown fields, and then each chunk with text counts as one token
 *                      and the prompt as 0 until the final usage
 */
public record ForwarderOptions(URI upstream, String upstreamModel, String upstreamApiKey, ModelInfo identity,
                               int maxConcurrent, long connectTimeoutMs, long idleTimeoutMs, boolean runningUsage) {
    public ForwarderOptions {
        if (!"http".equals(upstream.getScheme()) || upstream.getHost() == null) {
            throw new IllegalArgumentException("upstream must be an http:// URL on this host, got " + upstream);
        }
        if (maxConcurrent < 1 || connectTimeoutMs < 1 || idleTimeoutMs < 1) {
            throw new IllegalArgumentException("maxConcurrent, connectTimeoutMs and idleTimeoutMs must be positive");
        }
        upstream = URI.create("http://" + upstream.getRawAuthority()
                + upstream.getRawPath().replaceFirst("/+$", "").replaceFirst("/v1$", ""));
    }

    /** Leaves the key out: options end up in logs and exception messages. */
    @Override
    public String toString() {
        return "ForwarderOptions[upstream=" + upstream + ", upstreamModel=" + upstreamModel
                + ", upstreamApiKey=" + (upstreamApiKey == null ? "none" : "(set)") + ", identity=" + identity
                + ", maxConcurrent=" + maxConcurrent + ", connectTimeoutMs=" + connectTimeoutMs
                + ", idleTimeoutMs=" + idleTimeoutMs + ", runningUsage=" + runningUsage + "]";
    }
}
