package org.cocoonjvm.gateway.relay;

import io.vertx.core.json.JsonObject;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One JSON line per request on the {@code cocoon.access} logger: who, which model and worker,
 * status, tokens, cost and timings. Never prompt or completion text: a gateway in a confidential
 * network must not be able to leak what it relays, even by its logs.
 */
public final class AccessLog implements RelayObserver {
    private static final Logger log = LoggerFactory.getLogger("cocoon.access");

    @Override
    public void finished(RequestOutcome o) {
        if (!log.isInfoEnabled()) {
            return;
        }
        log.info(new JsonObject()
                .put("request_id", o.requestId())
                .put("key", o.keyId())
                .put("model", o.model())
                .put("tier", o.tier().name().toLowerCase(java.util.Locale.ROOT))
                .put("stream", o.stream())
                .put("worker", o.workerId())
                .put("attempts", o.attempts())
                .put("status", o.status())
                .put("error", o.errorCode())
                .put("finish_reason", o.finishReason())
                .put("prompt_tokens", o.promptTokens())
                .put("completion_tokens", o.completionTokens())
                .put("cost_nanoton", o.costNanoton())
                .put("queue_ms", millis(o.queueNanos()))
                .put("ttft_ms", millis(o.ttftNanos()))
                .put("total_ms", millis(o.totalNanos()))
                .put("client_gone", o.clientGone())
                .encode());
    }

    private static Double millis(long nanos) {
        return nanos < 0 ? null : Math.round(nanos / 1e3) / 1e3;
    }
}
