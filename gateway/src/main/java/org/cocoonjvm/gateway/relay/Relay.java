package org.cocoonjvm.gateway.relay;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.RequestMeter;
import org.cocoonjvm.gateway.limits.RateLimiter;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateCall;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client request relayed to workers: the per-request state machine, owned by the client
 * connection's event loop (no locks). Until the first token it may try up to
 * {@code maxAttempts} workers; from the first token on it is bound to one worker and never
 * splices another's output. The worker's gRPC stream is piped into the {@link CompletionSink}:
 * text is coalesced while the client's socket is full, and past {@code coalesceBytes} the gRPC
 * stream is paused, so a slow reader costs bounded memory. Every way out settles the bill once.
 *
 * <p>This class is the state machine itself: its start, the worker's events, the count of what
 * they carried, and its one end. Each phase's own state is in a part made with it, once per
 * request, on the same event loop: {@link Attempts} (the workers tried, the current one's call
 * and the retry before the first token), {@link KeepAlives} (the status hold and the keep-alive
 * comments), {@link Coalescer} (deltas to the client, merged for a slow reader), {@link WorkerStop}
 * (a worker cancelled after the end, its events until its Final, and a client's deadline cut) and
 * {@link Settlement} (the bill, the client's last events, the outcome).
 */
public final class Relay {
    /** The one logger of the relay and its parts: what operators and tests select the relay's lines by. */
    static final Logger log = LoggerFactory.getLogger(Relay.class);
    /**
     * What a relay needs from the gateway, shared by all requests on one event loop.
     *
     * @param running the relays started and not yet ended on this loop
     * @param timers  this loop's timers, each request's among them
     */
    public record Env(Vertx vertx, GrpcClient grpc, WorkerRegistry registry, RelayOptions options, RelayObserver observer,
                      RunningRelays running, EventLoopTimers timers) {}

    /**
     * Who asked and what for.
     *
     * @param path         what it was sent to: an HTTP path, or a gRPC method's ({@code /cocoon.v1.Inference/Generate})
     * @param arrivalNanos when the gateway had the request ({@link System#nanoTime}): its head, before the body
     * @param hold         what its hold was made of: each attempt's bound, the most usage its worker may bill it
     */
    public record Request(String id, String keyId, String path, GenerateRequest generate, WorkerRegistry.Route route,
                          boolean stream, long arrivalNanos, UsageBound.Hold hold) {}

    /** The access log's and the error metric's code for a client that stopped reading. */
    public static final String STALLED = "client_stalled";

    final Env env;
    final Request request;
    final CompletionSink sink;
    final RateLimiter.Permit permit;
    final RequestBilling.Charge charge;
    final RelayTimings timings;
    /** The client connection's event loop, where this relay's state lives. */
    final Context context;
    final Attempts attempts;
    final KeepAlives keepAlives;
    final Coalescer coalescer;
    final WorkerStop stop;
    final Settlement settlement;

    private RelayObserver.TokenGaps gaps;
    /** Where this request's completion tokens are counted as they come; null before its first. */
    private RelayObserver.GeneratedTokens generated;
    /** The completion tokens counted into {@link #generated}: its end counts only the rest. */
    long liveTokens;
    private long promptTokens;
    long completionTokens;
    boolean clientGone;
    /** The client read nothing for {@code stallTimeoutMs} while text waited for it. */
    boolean stalled;
    boolean done;
    private EventLoopTimers.Timer deadlineTimer;

    public Relay(Env env, Request request, CompletionSink sink, RateLimiter.Permit permit, RequestBilling.Charge charge) {
        this.env = env;
        this.request = request;
        this.sink = sink;
        this.permit = permit;
        this.charge = charge;
        this.timings = new RelayTimings(request.arrivalNanos());
        this.context = env.vertx().getOrCreateContext();
        this.attempts = new Attempts(this);
        this.keepAlives = new KeepAlives(this);
        this.coalescer = new Coalescer(this);
        this.stop = new WorkerStop(this);
        this.settlement = new Settlement(this);
    }

    public void start() {
        start(env.options().timeoutMs());
    }

    /** @param timeoutMs the client's own deadline (a gRPC {@code grpc-timeout}); the gateway's, if shorter, wins */
    public void start(long timeoutMs) {
        env.running().add(this);
        RelayOptions o = env.options();
        long limit = Math.min(timeoutMs, o.timeoutMs());
        // A gRPC client's own deadline is its own to enforce too: its answer cannot wait for the
        // worker's final count nor the ledger, and is billed what was counted at the cut
        // (cutAtDeadline). The gateway's own deadline waits for the count like any cancel.
        boolean clients = timeoutMs < o.timeoutMs();
        deadlineTimer = env.timers().set(limit, v -> {
            ApiException timeout = new ApiException(ErrorKind.TIMEOUT,
                    "The request did not finish within " + (limit < 10_000 ? limit + " ms." : limit / 1000 + " s."));
            if (clients) {
                cutAtDeadline(timeout);
            } else {
                fail(timeout);
            }
        });
        if (request.stream()) {
            keepAlives.holdStatus();
        }
        attempts.next();
    }

    /** The client closed its connection: stop the worker now and bill what it produced. */
    public void clientGone() {
        if (done) {
            return;
        }
        clientGone = true;
        end(null, null);
    }

    /** Reads the current attempt's worker stream ({@link Attempts} opened it): its events drive this relay. */
    void pipe(RegisteredWorker from, GrpcClientResponse<GenerateCall, GenerateEvent> response) {
        response.handler(event -> {
            if (attempts.worker() != from) {
                return;
            }
            if (stop.awaiting()) {
                stop.whileStopping(event);
                return;
            }
            if (done) {
                return;
            }
            switch (event.getEventCase()) {
                case ACCEPTED -> accepted(event.getAccepted().getPromptTokens());
                case DELTA -> onDelta(event.getDelta());
                case FINAL -> {
                    attempts.workerEnded();
                    Final fin = event.getFinal();
                    if (fin.getFinishReason() == FinishReason.FINISH_REASON_ERROR) {
                        // The worker failed the sequence, or stopped (no fault): retryable while nothing
                        // reached the client. Its usage is not used: the relay's count is billed. A claim
                        // past it is not judged (review Y, Y-7), but the operator sees it (audit X2).
                        if (attempts.bound().trusted(fin.getUsage(), completionTokens) != fin.getUsage()) {
                            settlement.warnOverClaim(fin.getUsage(), "its final failed the attempt, and its usage is not used");
                        }
                        attemptFailed(CompletionSink.workerFailure(fin), !fin.getWorkerStopping(), true);
                    } else {
                        end(settlement.trusted(fin), null);
                    }
                }
                default -> { }
            }
        });
        response.endHandler(v -> workerStreamOver(from, () -> attemptFailed(Attempts.failureOf(response),
                response.status() != GrpcStatus.RESOURCE_EXHAUSTED && response.status() != GrpcStatus.INVALID_ARGUMENT)));
        response.exceptionHandler(e -> workerStreamOver(from, () -> {
            // The transport's words ("Stream was closed (GOAWAY error code = 0)") are for the operator, not the chat user.
            log.debug("request {}: worker {}'s stream broke: {}", request.id(), from.id(), e.toString());
            attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker stopped answering: its connection broke off."), true);
        }));
    }

    /**
     * The worker's stream ended without a Final, or broke: a stopped worker's count is then what
     * was counted; a running attempt failed ({@code failed}: a refusal is no broken worker).
     */
    private void workerStreamOver(RegisteredWorker from, Runnable failed) {
        if (attempts.worker() != from) {
            return;
        }
        attempts.workerEnded();
        if (stop.awaiting()) {
            stop.workerStopped(null);
        } else if (!done) {
            failed.run();
        }
    }

    void accepted(int reported) {
        long prompt = Math.min(Integer.toUnsignedLong(reported), attempts.bound().promptTokens());
        promptTokens = prompt;
        timings.accepted();
        RequestMeter meter = attempts.meter();
        if (meter != null) {
            meter.prompt(prompt);
        }
    }

    private void onDelta(Delta delta) {
        long now = RelayTimings.now();
        long count = CompletionSink.tokens(delta);
        if (count > attempts.bound().completionTokens() - completionTokens) {
            overran(count);
            return;
        }
        int tokens = (int) count;  // within the bound, an int
        if (timings.firstTokenSeen()) {
            if (gaps == null) {
                gaps = env.observer().tokenGaps(request.route().model());
            }
            gaps.gap(timings.token(now), tokens);
            relay(delta, tokens);
            return;
        }
        timings.firstToken(now);
        keepAlives.firstToken();
        relay(delta, tokens);
        timings.firstTokenRelayed(now);
    }

    /**
     * The worker sent more completion tokens than the request allows (its max_tokens, or without
     * them the context the hold counted, or the worker's own where it is larger and the hold
     * covers it): it broke the contract, and what it sent past the bound is neither
     * passed on nor billed.
     */
    private void overran(long tokens) {
        log.warn("request {}: worker {} sent {} completion tokens more after {}, past the {} the request allows; its "
                + "call is reset and its attempt fails", request.id(), attempts.worker().id(), tokens, completionTokens,
                attempts.bound().completionTokens());
        // No cancel and no wait for its Final: a worker that broke the contract is believed no
        // further, and what the relay counted is billed (review Y, Y-3).
        attempts.dropCall();
        attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker sent more tokens than the request allows ("
                + attempts.bound().completionTokens() + ")."), true);
    }

    /** Counts, meters and passes on a delta: the per-token path, kept small so that it stays inlined. */
    private void relay(Delta delta, int tokens) {
        completionTokens += tokens;
        countLive(tokens);
        RequestMeter meter = attempts.meter();
        if (meter != null) {
            meter.completion(tokens);
        }
        coalescer.send(delta);
    }

    /**
     * Counts billed completion tokens in the metrics as they come (audit V, V-3: counted at the
     * request's end, a long stream was a flat line, then a spike): a field add and the model's
     * counter, held since the first delta, no lookup.
     */
    void countLive(int tokens) {
        if (generated == null) {
            generated = env.observer().generatedTokens(request.route().model());
        }
        generated.generated(tokens);
        liveTokens += tokens;
    }

    /**
     * The client's socket stayed full for {@code stallTimeoutMs}: it has stopped reading. It is
     * treated as gone (the worker stopped, what it produced billed), and its response dropped, or
     * the text queued for it would wait for as long as the connection lived.
     */
    void stalled() {
        if (done) {
            return;
        }
        dropStalledClient();
        end(null, null);
    }

    /** The client stopped reading: it counts as gone, and its response is dropped with what is queued for it. */
    void dropStalledClient() {
        stalled = true;
        clientGone = true;
        sink.abandon();
    }

    /** The response's last write failed: its client is gone. */
    void lastWriteFailed() {
        clientGone = true;
    }

    void attemptFailed(ApiException failure, boolean brokenWorker) {
        attemptFailed(failure, brokenWorker, false);
    }

    /**
     * Before the first token another worker may still serve the request ({@link Attempts#retry}); after it, never.
     *
     * @param withFinal the worker ended the attempt with a failed Final (it took its prompt back:
     *                  nobody pays for it); false when its stream ended without one, or was cut
     */
    private void attemptFailed(ApiException failure, boolean brokenWorker, boolean withFinal) {
        if (brokenWorker) {
            env.registry().failed(attempts.worker());
        }
        if (timings.firstTokenSeen()) {
            fail(failure);  // bound to this worker: end() bills what it produced
            return;
        }
        attempts.worker().finished(0);
        // An attempt that failed before its first token costs the client nothing, whatever its
        // worker claims: it never checkpoints against the client, and its prompt is not billed
        // (audit X, X-6: a worker's claim was charged to a client another worker then served).
        promptTokens = 0;
        attempts.retry(failure, withFinal);
    }

    void fail(ApiException error) {
        end(null, error);
    }

    /**
     * The client's own deadline is near: it is answered now, with the usage this relay counted
     * (the prompt the worker reported and the tokens forwarded) and its cost, which is exactly what
     * its account is charged. Neither the worker's Final nor the ledger's commit is waited for: a
     * loaded gateway took hundreds of milliseconds for those, and the client's own timer fired
     * first, leaving it without its cost (audit N, N-2). The worker is cancelled as for any stop,
     * and its Final read in the background: the tokens it made after the cut are paid to it, so
     * that its channel agrees with its own count, but not billed to the client (see
     * {@link WorkerStop#cut(ApiException, boolean)}).
     */
    void cutAtDeadline(ApiException error) {
        if (done) {
            return;
        }
        stop.atDeadline();
        end(null, error);
    }

    /**
     * Ends the relay with {@code error}, waiting at most {@code waitMs} for a cancelled worker's
     * final count: a stopping gateway must tell its client before it closes the connection, even
     * at the price of billing what it counted rather than what the worker metered.
     */
    void failWithin(ApiException error, long waitMs) {
        if (stop.awaiting()) {
            // Already waiting for its worker (its client left): no longer than the others.
            stop.shortenWait(waitMs);
            return;
        }
        stop.waitNoLongerThan(waitMs);
        end(null, error);
    }

    /**
     * The one way out. {@code fin}: the worker's final event; {@code error}: a failure to report;
     * neither: the client left. Settles the bill for what was produced, exactly once: at once, or,
     * when the worker is still generating, once {@link WorkerStop} learned its count.
     */
    private void end(Final fin, ApiException error) {
        if (done) {
            return;
        }
        done = true;
        boolean statusSent = sink.committed();  // read before fail(): a JSON sink counts as committed after it
        keepAlives.cancel();
        EventLoopTimers.cancel(deadlineTimer);
        coalescer.cancelStallTimer();
        if (attempts.generating()) {
            if (stop.answerAtOnce()) {
                stop.cut(error, statusSent);  // the client's own deadline: answered now
            } else {
                stop.begin(error, statusSent);  // client gone, timeout, or the gateway stopping
            }
            return;
        }
        attempts.endCall();  // the worker's stream is over; the call's own side closes with it
        settlement.settle(fin, error, fin != null ? fin.getUsage() : counted(), fin != null, statusSent);
    }

    /** The usage this relay counted: the prompt the worker reported and the tokens it streamed. */
    Usage counted() {
        return Usage.newBuilder().setPromptTokens((int) promptTokens).setCompletionTokens((int) completionTokens).build();
    }
}
