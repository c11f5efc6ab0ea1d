package org.cocoonjvm.gateway.relay;

import java.time.Clock;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.protocol.openai.JsonText;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One JSON line per request on the {@code cocoon.access} logger. A relayed request's line says when
 * it ended, who, which model and worker, status, tokens, cost and timings; a request answered
 * without a relay (refused before one, or not a completion) gets a shorter line from
 * {@link #answered}. Never prompt or completion text: a gateway in a confidential network must not
 * be able to leak what it relays, even by its logs. Strings a client chose (a model name, a path)
 * are cut to {@link #MOST_CHARS}, so no request can write megabytes of log.
 *
 * <p>The line is built by hand, as the stream's chunks are: a {@code JsonObject} per request and
 * its encoding were three quarters of this class's cost, about 8% of the gateway's CPU on short
 * requests.
 */
public final class AccessLog implements RelayObserver {
    private static final Logger log = LoggerFactory.getLogger("cocoon.access");
    static final int MOST_CHARS = 256;

    private final Clock clock;

    public AccessLog() {
        this(Clock.systemUTC());
    }

    /** @param clock the {@code time} of each line: when the request ended */
    public AccessLog(Clock clock) {
        this.clock = clock;
    }

    @Override
    public void finished(RequestOutcome o) {
        if (!log.isInfoEnabled()) {
            return;
        }
        StringBuilder line = start(480);
        string(line, "request_id", o.requestId()).append(',');
        // POST both ways: a gRPC call is an HTTP/2 POST to its method's path.
        string(line, "method", "POST").append(',');
        string(line, "path", o.path()).append(',');
        string(line, "key", o.keyId()).append(',');
        string(line, "model", o.model()).append(',');
        string(line, "tier", o.tier().wireName()).append(",\"stream\":").append(o.stream()).append(',');
        string(line, "worker", o.workerId()).append(",\"attempts\":").append(o.attempts())
                .append(",\"status\":").append(o.status()).append(',');
        string(line, "error", o.errorCode()).append(',');
        string(line, "finish_reason", o.finishReason())
                .append(",\"prompt_tokens\":").append(o.promptTokens())
                .append(",\"completion_tokens\":").append(o.completionTokens())
                .append(",\"cost_nanoton\":").append(o.costNanoton());
        millis(line, "queue_ms", o.queueNanos());
        millis(line, "ttft_ms", o.ttftNanos());
        millis(line, "cancel_ms", o.cancelNanos());
        millis(line, "overhead_ms", o.overheadNanos());
        millis(line, "total_ms", o.totalNanos());
        log.info(line.append(",\"client_gone\":").append(o.clientGone()).append('}').toString());
    }

    /**
     * A request answered without a relay: its id (as its response said; null if none went out),
     * method and path, the key (null before authentication), the model if it got as far as naming
     * one, the status, the error code, and whether the client left before the response ended.
     */
    public void answered(String requestId, String method, String path, String keyId, String model, int status, String errorCode,
                         long totalNanos, boolean clientGone) {
        if (!log.isInfoEnabled()) {
            return;
        }
        StringBuilder line = start(300);
        string(line, "request_id", requestId).append(',');
        string(line, "method", method).append(',');
        string(line, "path", path).append(',');
        string(line, "key", keyId).append(',');
        string(line, "model", model).append(",\"status\":").append(status).append(',');
        string(line, "error", errorCode);
        millis(line, "total_ms", totalNanos);
        log.info(line.append(",\"client_gone\":").append(clientGone).append('}').toString());
    }

    /**
     * The status of a request that its gateway died running and the ledger's recovery ended: what a
     * proxy in front logs for an upstream that closed the connection without a whole response. What
     * its client saw is not known: the connection cut, after a stream's 200 head or before any.
     */
    public static final int RECOVERED_STATUS = 502;

    /**
     * A request its gateway never ended (it died, or let its lease expire, with the request running),
     * ended by this process's recovery at its last checkpoint (audit V, V-8): a relayed request's
     * line, with what the ledger kept of it. {@code time} is the recovery's, {@code status}
     * {@link #RECOVERED_STATUS}, {@code error} {@code errorCode}; what died with that gateway (path,
     * tier, stream, attempts, finish reason, timings, whether the client left) is null, and so are
     * the ids and tokens the ledger does not hold (a reservation taken before it kept them, or never
     * checkpointed: then released, cost 0).
     */
    public void recovered(RecoveredReservation recovered, String errorCode) {
        if (!log.isInfoEnabled()) {
            return;
        }
        ReservationLabel label = recovered.label();
        TokenCounts tokens = recovered.tokens();
        StringBuilder line = start(400);
        string(line, "request_id", label == null ? null : label.requestId()).append(',');
        string(line, "method", "POST").append(',');
        string(line, "path", null).append(',');
        string(line, "key", label == null ? null : label.keyId()).append(',');
        string(line, "model", label == null ? null : label.model()).append(',');
        string(line, "tier", null).append(",\"stream\":null,");
        string(line, "worker", recovered.workerId()).append(",\"attempts\":null,\"status\":").append(RECOVERED_STATUS)
                .append(',');
        string(line, "error", errorCode).append(',');
        string(line, "finish_reason", null);
        count(line, "prompt_tokens", tokens == null ? -1 : tokens.prompt());
        count(line, "completion_tokens", tokens == null ? -1 : tokens.completion());
        count(line, "cost_nanoton", recovered.settlement().chargedNanoton());
        for (String unknown : new String[] {"queue_ms", "ttft_ms", "cancel_ms", "overhead_ms", "total_ms"}) {
            millis(line, unknown, -1);
        }
        log.info(line.append(",\"client_gone\":null}").toString());
    }

    /** A line is a whole JSON object, its own time included, so log shippers need no pattern to parse. */
    private StringBuilder start(int capacity) {
        StringBuilder line = new StringBuilder(capacity).append("{\"time\":\"");
        DateTimeFormatter.ISO_INSTANT.formatTo(clock.instant().truncatedTo(ChronoUnit.MICROS), line);
        return line.append("\",");
    }

    private static StringBuilder string(StringBuilder line, String name, String value) {
        line.append('"').append(name).append("\":");
        if (value == null) {
            return line.append("null");
        }
        if (value.length() <= MOST_CHARS) {
            return JsonText.appendString(line, value);
        }
        int cut = Character.isHighSurrogate(value.charAt(MOST_CHARS - 1)) ? MOST_CHARS - 1 : MOST_CHARS;  // never half a pair
        return JsonText.appendString(line, value.substring(0, cut) + "…");
    }

    /** A count; null when not known (negative). */
    private static void count(StringBuilder line, String name, long value) {
        line.append(",\"").append(name).append("\":");
        if (value < 0) {
            line.append("null");
        } else {
            line.append(value);
        }
    }

        /** Microsecond precision in milliseconds; null when the moment never came (no first token, say). */
    private static void millis(StringBuilder line, String name, long nanos) {
        line.append(",\"").append(name).append("\":");
        if (nanos < 0) {
            line.append("null");
        } else {
            line.append(Math.round(nanos / 1e3) / 1e3);
        }
    }
}
