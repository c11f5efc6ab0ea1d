package org.cocoonjvm.load;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import org.cocoonjvm.protocol.openai.SseParser;

/**
 * One chat completion request, from sending to its end, timed the way the k6 scripts time it:
 * time to first token is the first SSE data event (comments such as keep-alives are not events),
 * inter-token latency the gaps between data events that carry content. Owned by the event loop
 * its client calls back on; it completes its future exactly once.
 */
final class LoadCall {
    private static final int MAX_EVENT_BYTES = 1 << 20;
    private static final byte[] DONE = "[DONE]".getBytes(StandardCharsets.US_ASCII);

    private final Vertx vertx;
    private final HttpClient client;
    private final Target target;
    private final RequestSpec spec;
    private final long index;
    private final Scenario.Abort abort;
    private final Duration timeout;
    private final Promise<Outcome> done = Promise.promise();
    /**
     * The gaps so far, {@code gapCount} of them. Primitive, not a list of boxed longs: a run keeps
     * every request's gaps until it ends (in its {@link Recorder}), and boxed, at 60k tokens/s they
     * were ~12 MB that every young collection copied again (docs/benchmarks.md, "The load
     * driver's own garbage").
     */
    private long[] gaps = new long[16];
    private int gapCount;
    private final StreamChunk.Reader chunks = new StreamChunk.Reader();
    private HttpClientRequest request;
    private long timer = -1;
    private long start;
    private long firstData = -1;
    private long lastContent = -1;
    private long contentEvents;
    private long usageTokens = -1;
    private boolean sawDone;
    /** The code of an error event in the stream ({@code in_band_timeout}, …), or null. */
    private String inBandError;

    /**
     * @param index   which of its flow's requests this is (from 0): it picks the prompt
     * @param abort   when to cut the stream on purpose; {@link Scenario.Abort#NEVER} reads it to the end
     * @param timeout the longest the request may take from sending to its end, as error kind
     *                {@code timeout}: a whole-request bound, because a stream that only sends
     *                keep-alive comments is never idle on the wire
     */
    LoadCall(Vertx vertx, HttpClient client, Target target, RequestSpec spec, long index, Scenario.Abort abort, Duration timeout) {
        this.vertx = vertx;
        this.client = client;
        this.target = target;
        this.spec = spec;
        this.index = index;
        this.abort = abort;
        this.timeout = timeout;
    }

    Future<Outcome> start() {
        start = System.nanoTime();
        String base = target.baseUrl().getPath() == null ? "" : target.baseUrl().getPath().replaceAll("/+$", "");
        RequestOptions options = new RequestOptions().setMethod(HttpMethod.POST)
                .setHost(target.baseUrl().getHost()).setPort(target.port()).setURI(base + "/v1/chat/completions")
                .putHeader("Authorization", "Bearer " + target.apiKey()).putHeader("Content-Type", "application/json");
        spec.headers().forEach(options::putHeader);
        Buffer body = spec.body(target.model(), index).toBuffer();
        // One timer, for whichever cut is due first: past an abort on time shorter than the timeout (as files must give it),
        // the timeout can no longer be reached.
        boolean abortsFirst = !abort.after().isZero() && abort.after().compareTo(timeout) < 0;
        timer = vertx.setTimer(Math.max(1, (abortsFirst ? abort.after() : timeout).toMillis()), id -> {
            timer = -1;
            if (abortsFirst) {
                cut(Outcome.Kind.ABORTED, null);
            } else {
                cut(Outcome.Kind.ERROR, "timeout");
            }
        });
        client.request(options).onComplete(created -> {
            if (created.failed()) {
                finish(Outcome.Kind.ERROR, "transport");
                return;
            }
            request = created.result();
            if (done.future().isComplete()) {
                // Timed out, aborted or interrupted while waiting for a connection: nothing is sent.
                request.reset();
                return;
            }
            request.send(body).onComplete(sent -> {
                if (sent.failed()) {
                    finish(Outcome.Kind.ERROR, "transport");
                } else {
                    onResponse(sent.result());
                }
            });
        });
        return done.future();
    }

    /** Cuts a request that is still running when the run is over. */
    void interrupt() {
        cut(Outcome.Kind.INTERRUPTED, null);
    }

    /** Settled first: the reset fails the response, and that failure is ours, not the server's. */
    private void cut(Outcome.Kind kind, String errorKind) {
        finish(kind, errorKind);
        if (request != null) {
            request.reset();
        }
    }

    private void onResponse(HttpClientResponse response) {
        if (response.statusCode() != 200) {
            // Read the error body so the connection can be reused, then classify by status.
            response.body().onComplete(ignored -> finish(response.statusCode() == 429 ? Outcome.Kind.REJECTED : Outcome.Kind.ERROR,
                    "http_" + response.statusCode()));
            return;
        }
        response.exceptionHandler(e -> finish(Outcome.Kind.ERROR, "transport"));
        if (!spec.stream()) {
            response.body().onComplete(ar -> {
                if (ar.failed()) {
                    finish(Outcome.Kind.ERROR, "transport");
                    return;
                }
                long whole = System.nanoTime() - start;
                try {
                    JsonObject usage = ar.result().toJsonObject().getJsonObject("usage");
                    usageTokens = usage == null ? 0 : usage.getLong("completion_tokens", 0L);
                    // Only an answer that parses is a first token, as in lib/cocoon.js.
                    firstData = whole;
                    finish(Outcome.Kind.COMPLETED, null);
                } catch (DecodeException | ClassCastException e) {
                    finish(Outcome.Kind.ERROR, "bad_json");
                }
            });
            return;
        }
        response.handler(new SseParser(MAX_EVENT_BYTES, this::onData));
        response.endHandler(v -> {
            if (inBandError != null) {
                finish(Outcome.Kind.ERROR, inBandError);
            } else {
                finish(sawDone ? Outcome.Kind.COMPLETED : Outcome.Kind.ERROR, "no_done");
            }
        });
    }

    private void onData(byte[] data, int offset, int length) {
        if (done.future().isComplete()) {
            // Cut, timed out or interrupted: what still arrives is no longer this request's to count.
            return;
        }
        long now = System.nanoTime();
        if (firstData < 0) {
            firstData = now - start;
        }
        if (Arrays.equals(data, offset, offset + length, DONE, 0, DONE.length)) {
            sawDone = true;
            return;
        }
        StreamChunk chunk;
        try {
            chunk = chunks.read(data, offset, length);
        } catch (IOException e) {
            inBandError = "bad_json";
            return;
        }
        if (chunk.errorCode() != null) {
            inBandError = "in_band_" + chunk.errorCode();
            return;
        }
        if (chunk.completionTokens() >= 0) {
            usageTokens = chunk.completionTokens();
        }
        if (chunk.hasContent()) {
            if (lastContent >= 0) {
                if (gapCount == gaps.length) {
                    gaps = Arrays.copyOf(gaps, gapCount * 2);
                }
                gaps[gapCount++] = now - lastContent;
            }
            lastContent = now;
            contentEvents++;
            if (abort.afterTokens() > 0 && contentEvents >= abort.afterTokens()) {
                cut(Outcome.Kind.ABORTED, null);
            }
        }
    }

    private void finish(Outcome.Kind kind, String errorKind) {
        if (done.future().isComplete()) {
            return;
        }
        if (timer >= 0) {
            vertx.cancelTimer(timer);
        }
        chunks.close();
        long tokens = usageTokens >= 0 ? usageTokens : contentEvents;
        done.complete(new Outcome(kind, kind == Outcome.Kind.ERROR ? errorKind : null, firstData, Arrays.copyOf(gaps, gapCount), tokens,
                System.nanoTime() - start, start));
    }
}
