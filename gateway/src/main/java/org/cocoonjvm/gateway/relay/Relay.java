package org.cocoonjvm.gateway.relay;

import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.RequestMeter;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.gateway.limits.RateLimiter;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.grpc.Cancel;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateCall;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.grpc.WorkerGrpcClient;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ErrorTrailers;
import org.cocoonjvm.protocol.openai.UsageCost;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client request relayed to workers: the per-request state machine, owned by the client
 * connection's event loop (no locks). Until the first token it may try up to
 * {@code maxAttempts} workers; from the first token on it is bound to one worker and never
 * splices another's output. The worker's gRPC stream is piped into the {@link CompletionSink}:
 * text is coalesced while the client's socket is full, and past {@code coalesceBytes} the gRPC
 * stream is paused, so a slow reader costs bounded memory. Every way out settles the bill once.
 */
public final class Relay {
    private static final Logger log = LoggerFactory.getLogger(Relay.class);
    /**
     * How long a cancelled worker's final count is waited for. A live worker answers after its
     * current engine step, which a long prefill on a CPU can make seconds long; a dead one's
     * connection is closed by the registry's liveness PINGs within its silence limit, which ends
     * the wait sooner. This bounds only a worker alive and stuck.
     */
    static final long CANCEL_WAIT_MS = 60_000;
    /**
     * What a relay needs from the gateway, shared by all requests on one event loop.
     *
     * @param running the relays started and not yet ended on this loop
     */
    public record Env(Vertx vertx, GrpcClient grpc, WorkerRegistry registry, RelayOptions options, RelayObserver observer,
                      RunningRelays running) {}

    /**
     * Who asked and what for.
     *
     * @param path         what it was sent to: an HTTP path, or a gRPC method's ({@code /cocoon.v1.Inference/Generate})
     * @param arrivalNanos when the gateway had the request ({@link System#nanoTime}): its head, before the body
     * @param hold         what its hold was made of: each attempt's bound, the most usage its worker may bill it
     */
    public record Request(String id, String keyId, String path, GenerateRequest generate, WorkerRegistry.Route route,
                          boolean stream, long arrivalNanos, UsageBound.Hold hold) {}

    private final Env env;
    private final Request request;
    private final CompletionSink sink;
    private final RateLimiter.Permit permit;
    private final RequestBilling.Charge charge;
    private final RelayTimings timings;
    /** The client connection's event loop, where this relay's state lives. */
    private final Context context;
    private final Set<String> tried = new HashSet<>();
    /** The worker of the latest attempt, kept when it failed: the one the log names for what was billed. */
    private String lastWorkerId;

    private RegisteredWorker worker;
    /** The most usage the current attempt's worker may bill: the hold's, or widened to what that worker announced. */
    private UsageBound bound;
    /** The current attempt's worker fee, metered into the worker's payment channel; null without one. */
    private RequestMeter meter;
    private GrpcClientRequest<GenerateCall, GenerateEvent> call;
    private GrpcClientResponse<GenerateCall, GenerateEvent> stream;
    private ApiException lastFailure;
    private RelayObserver.TokenGaps gaps;
    /** Where this request's completion tokens are counted as they come; null before its first. */
    private RelayObserver.GeneratedTokens generated;
    /** The completion tokens counted into {@link #generated}: its end counts only the rest. */
    private long liveTokens;
    private long promptTokens;
    private long completionTokens;
    private StringBuilder pendingText;
    /** The pending text's tokens, so that a merged delta still counts them. */
    private final Delta.Builder pendingTokens = Delta.newBuilder();
    private boolean paused;
    /** The client's reader paused the worker's stream at least once. */
    private boolean readerPaused;
    /** The current attempt's worker stream is over: its Final came, it ended without one, or it broke. */
    private boolean workerEnded;
    /** Not null while the relay ended with its worker generating: a Cancel was sent, and the worker's Final is awaited. */
    private Stop stop;
    /** How long a stop that begins waits for the worker's Final: {@link #CANCEL_WAIT_MS}, or less ({@link #failWithin}). */
    private long stopWaitMs = CANCEL_WAIT_MS;
    /**
     * The client's own deadline ({@code grpc-timeout}) ended the relay: its answer goes out at once,
     * waiting neither for the worker's Final nor for the ledger (see {@link #cutAtDeadline}).
     */
    private boolean answerAtOnce;
    /** Not null once the client was answered at its deadline ({@link #cutWorker}); the worker's Final is awaited in the background. */
    private Cut cut;
    private boolean clientGone;
    /** The client read nothing for {@code stallTimeoutMs} while text waited for it. */
    private boolean stalled;
    private boolean done;
    private boolean reported;
    private long holdTimer = -1;
    private long keepAliveTimer = -1;
    private long deadlineTimer = -1;
    private long stallTimer = -1;

    public Relay(Env env, Request request, CompletionSink sink, RateLimiter.Permit permit, RequestBilling.Charge charge) {
        this.env = env;
        this.request = request;
        this.sink = sink;
        this.permit = permit;
        this.charge = charge;
        this.timings = new RelayTimings(request.arrivalNanos());
        this.context = env.vertx().getOrCreateContext();
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
        deadlineTimer = env.vertx().setTimer(limit, id -> {
            ApiException timeout = new ApiException(ErrorKind.TIMEOUT,
                    "The request did not finish within " + (limit < 10_000 ? limit + " ms." : limit / 1000 + " s."));
            if (clients) {
                cutAtDeadline(timeout);
            } else {
                fail(timeout);
            }
        });
        if (request.stream()) {
            // Hold the status for a while: a failure before the first token is then a real status.
            holdTimer = env.vertx().setTimer(o.holdStatusMs(), id -> {
                sink.keepAlive();
                timings.keptAlive(RelayTimings.now());
                keepAlives(o.keepAliveMs());
            });
        }
        attempt();
    }

    /**
     * A comment line once the stream was silent for {@code keepAliveMs}, before the first token and
     * between tokens alike: a slow model's pauses must not look like a dead connection to the
     * proxies and load balancers on the way. One timer at a time, set for when the silence would
     * reach the limit; tokens do not touch it. Not while the client's socket is full: it has bytes.
     */
    private void keepAlives(long inMs) {
        keepAliveTimer = env.vertx().setTimer(Math.max(1, inMs), id -> {
            if (done) {
                return;  // a timer that fired as the relay ended must not schedule the next
            }
            long limit = env.options().keepAliveMs() * 1_000_000;
            long now = RelayTimings.now();
            long quiet = timings.quietNanos(now);
            if (quiet < limit) {
                keepAlives(TimeUnit.NANOSECONDS.toMillis(limit - quiet));
                return;
            }
            if (!sink.writeQueueFull()) {
                sink.keepAlive();
            }
            timings.keptAlive(now);
            keepAlives(env.options().keepAliveMs());
        });
    }

    /** The client closed its connection: stop the worker now and bill what it produced. */
    public void clientGone() {
        if (done) {
            return;
        }
        clientGone = true;
        end(null, null);
    }

    /** Picks the next worker (or fails the request when none is left), meters it, and opens its call. */
    private void attempt() {
        RegisteredWorker next;
        try {
            next = env.registry().pick(new WorkerRegistry.Route(request.route().model(), request.route().tier(), tried,
                    request.route().affinityKey()));
        } catch (ApiException e) {
            // A retry with no worker left to take it (its worker's registration, likely the model's
            // last, went with the failure): the request failed on a worker, and that is what it is told.
            boolean noneLeft = e.kind() == ErrorKind.MODEL_NOT_FOUND || e.kind() == ErrorKind.NO_CAPACITY;
            fail(noneLeft && lastFailure != null ? lastFailure : e);
            return;
        }
        if (next == null) {
            fail(lastFailure);
            return;
        }
        worker = next;
        bound = boundFor(next);
        workerEnded = false;
        tried.add(next.id());
        lastWorkerId = next.id();
        next.started();
        WorkerChannel paidBy = next.channel();  // once: a replacement may take its place meanwhile
        meter = paidBy == null ? null : paidBy.meter(next.id(), request.generate().getModel(), charge);
        GenerateRequest generate = paidBy == null ? request.generate()
                : request.generate().toBuilder().setChannelId(paidBy.idBytes()).build();
        timings.attemptStarted();
        long opening = boundOpening(next);
        env.grpc().request(next.address(), WorkerGrpcClient.Generate).onComplete(opened -> onCallOpened(next, generate, opening, opened));
    }

    /**
     * The bound of an attempt on {@code next}: the hold's, widened to the context and chat template
     * it announced where they are larger (it registered after admission), within what the
     * reservation covers (review Y, Y-4).
     */
    private UsageBound boundFor(RegisteredWorker next) {
        ModelRef announced = next.model(request.route().model());  // a picked worker serves the model
        UsageBound.Hold hold = request.hold();
        return hold.boundFor(announced.getMaxContext(), WorkerRegistry.chatTemplateTokens(announced, hold.chatMessages()),
                charge::covers);
    }

    /**
     * A worker that froze before this front had a connection to it never completes one (its
     * kernel accepts, nothing answers): no PING can find it, so the call's opening is bounded.
     *
     * @return the timer, cancelled once the call opened or failed to
     */
    private long boundOpening(RegisteredWorker next) {
        long silence = env.registry().silenceLimitMs();
        return env.vertx().setTimer(silence, id -> {
            if (!done && worker == next && call == null) {
                attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker did not take the call within " + silence + " ms."), true);
            }
        });
    }

    /** The attempt's call to {@code next} opened, or could not: the request is written on it, and its answer awaited. */
    private void onCallOpened(RegisteredWorker next, GenerateRequest generate, long opening,
                              AsyncResult<GrpcClientRequest<GenerateCall, GenerateEvent>> opened) {
        env.vertx().cancelTimer(opening);
        if (done || worker != next) {
            if (opened.succeeded()) {
                opened.result().cancel();
            }
            return;
        }
        if (opened.failed()) {
            attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker could not be reached: " + opened.cause().getMessage()), true);
            return;
        }
        call = opened.result();
        // Not ended with it: the call stays open for a Cancel (see stopWorker).
        call.write(GenerateCall.newBuilder().setStart(generate).build());
        timings.forwarded();
        call.response().onComplete(answered -> onResponse(next, answered));
    }

    /**
     * The worker answered the call (its stream is piped, also while stopping, for the final count),
     * or failed it: the attempt failed, unless the relay is stopping or done.
     */
    private void onResponse(RegisteredWorker next, AsyncResult<GrpcClientResponse<GenerateCall, GenerateEvent>> answered) {
        if (worker != next) {
            return;
        }
        if (stop != null) {
            if (answered.succeeded()) {
                pipe(next, answered.result());
            } else {
                workerStopped(null);
            }
            return;
        }
        if (done) {
            return;
        }
        if (answered.failed()) {
            attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker failed: " + answered.cause().getMessage()), true);
        } else {
            pipe(next, answered.result());
        }
    }

    private void pipe(RegisteredWorker from, GrpcClientResponse<GenerateCall, GenerateEvent> response) {
        stream = response;
        response.handler(event -> {
            if (worker != from) {
                return;
            }
            if (stop != null) {
                whileStopping(event);
                return;
            }
            if (done) {
                return;
            }
            switch (event.getEventCase()) {
                case ACCEPTED -> accepted(event.getAccepted().getPromptTokens());
                case DELTA -> onDelta(event.getDelta());
                case FINAL -> {
                    workerEnded = true;
                    Final fin = event.getFinal();
                    if (fin.getFinishReason() == FinishReason.FINISH_REASON_ERROR) {
                        // The worker failed the sequence, or stopped (no fault): retryable while nothing
                        // reached the client. Its usage is not used: the relay's count is billed. A claim
                        // past it is not judged (review Y, Y-7), but the operator sees it (audit X2).
                        if (bound.trusted(fin.getUsage(), completionTokens) != fin.getUsage()) {
                            warnOverClaim(fin.getUsage(), "its final failed the attempt, and its usage is not used");
                        }
                        attemptFailed(CompletionSink.workerFailure(fin), !fin.getWorkerStopping(), true);
                    } else {
                        end(trusted(fin), null);
                    }
                }
                default -> { }
            }
        });
        response.endHandler(v -> workerStreamOver(from, () -> attemptFailed(failureOf(response),
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
        if (worker != from) {
            return;
        }
        workerEnded = true;
        if (stop != null) {
            workerStopped(null);
        } else if (!done) {
            failed.run();
        }
    }

    private void accepted(int reported) {
        long prompt = Math.min(Integer.toUnsignedLong(reported), bound.promptTokens());
        promptTokens = prompt;
        timings.accepted();
        if (meter != null) {
            meter.prompt(prompt);
        }
    }

    private void onDelta(Delta delta) {
        long now = RelayTimings.now();
        long count = CompletionSink.tokens(delta);
        if (count > bound.completionTokens() - completionTokens) {
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
        cancelTimer(holdTimer);
        if (request.stream() && keepAliveTimer < 0) {
            keepAlives(env.options().keepAliveMs());
        }
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
                + "call is reset and its attempt fails", request.id(), worker.id(), tokens, completionTokens,
                bound.completionTokens());
        // No cancel and no wait for its Final: a worker that broke the contract is believed no
        // further, and what the relay counted is billed (review Y, Y-3).
        workerEnded = true;
        call.cancel();
        call = null;  // reset: nothing more is written on it
        attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker sent more tokens than the request allows ("
                + bound.completionTokens() + ")."), true);
    }

    /** Counts, meters and passes on a delta: the per-token path, kept small so that it stays inlined. */
    private void relay(Delta delta, int tokens) {
        completionTokens += tokens;
        countLive(tokens);
        if (meter != null) {
            meter.completion(tokens);
        }
        if (pendingText == null && !sink.writeQueueFull()) {
            sink.delta(delta);
        } else {
            holdForSlowReader(delta);
        }
    }

    /**
     * Counts billed completion tokens in the metrics as they come (audit V, V-3: counted at the
     * request's end, a long stream was a flat line, then a spike): a field add and the model's
     * counter, held since the first delta, no lookup.
     */
    private void countLive(int tokens) {
        if (generated == null) {
            generated = env.observer().generatedTokens(request.route().model());
        }
        generated.generated(tokens);
        liveTokens += tokens;
    }

    /** The client is slow: merge into one pending delta, and past the bound stop reading the worker. */
    private void holdForSlowReader(Delta delta) {
        if (pendingText == null) {
            sink.drainHandler(v -> flushPending());
            stallTimer = env.vertx().setTimer(env.options().stallTimeoutMs(), id -> stalled());
        }
        pend(delta);
        if (pendingText.length() >= env.options().coalesceBytes() && !paused) {
            paused = true;
            readerPaused = true;
            stream.pause();
        }
    }

    private void pend(Delta delta) {
        if (pendingText == null) {
            pendingText = new StringBuilder();
        }
        pendingText.append(delta.getText());
        pendingTokens.addAllTokenIds(delta.getTokenIdsList())
                .setTokensWithoutIds(pendingTokens.getTokensWithoutIds() + delta.getTokensWithoutIds());
    }

    private void flushPending() {
        if (pendingText == null || sink.ended()) {
            return;
        }
        cancelTimer(stallTimer);
        stallTimer = -1;
        Delta merged = pendingTokens.setText(pendingText.toString()).build();
        pendingTokens.clear();
        pendingText = null;
        sink.delta(merged);
        if (paused && !done) {
            paused = false;
            stream.resume();
        }
    }

    /**
     * The client's socket stayed full for {@code stallTimeoutMs}: it has stopped reading. It is
     * treated as gone (the worker stopped, what it produced billed), and its response dropped, or
     * the text queued for it would wait for as long as the connection lived.
     */
    private void stalled() {
        if (done) {
            return;
        }
        dropStalledClient();
        end(null, null);
    }

    /** The client stopped reading: it counts as gone, and its response is dropped with what is queued for it. */
    private void dropStalledClient() {
        stalled = true;
        clientGone = true;
        sink.abandon();
    }

    private void attemptFailed(ApiException failure, boolean brokenWorker) {
        attemptFailed(failure, brokenWorker, false);
    }

    /**
     * Before the first token another worker may still serve the request; after it, never.
     *
     * @param withFinal the worker ended the attempt with a failed Final (it took its prompt back:
     *                  nobody pays for it); false when its stream ended without one, or was cut
     */
    private void attemptFailed(ApiException failure, boolean brokenWorker, boolean withFinal) {
        if (brokenWorker) {
            env.registry().failed(worker);
        }
        if (timings.firstTokenSeen()) {
            fail(failure);  // bound to this worker: end() bills what it produced
            return;
        }
        worker.finished(0);
        // An attempt that failed before its first token costs the client nothing, whatever its
        // worker claims: it never checkpoints against the client, and its prompt is not billed
        // (audit X, X-6: a worker's claim was charged to a client another worker then served).
        promptTokens = 0;
        if (meter != null) {
            meter.billNoMoreThan(Usage.getDefaultInstance());
            // With a Final the worker took its prompt back, as an honest one says (prompt 0); without
            // one, the prompt it reported is paid, as it counts it delivered.
            meter.finish(withFinal ? Usage.getDefaultInstance() : null);
            meter = null;
        }
        if (call != null) {
            call.end();
        }
        worker = null;
        call = null;
        stream = null;
        lastFailure = failure;
        // A request at fault (4xx: invalid, too long, too large, unknown model) fails on every worker alike.
        boolean retryable = failure.kind().httpStatus >= 500;
        if (retryable && tried.size() < env.options().maxAttempts()) {
            attempt();
        } else {
            fail(failure);
        }
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
     * {@link #cutWorker}).
     */
    private void cutAtDeadline(ApiException error) {
        if (done) {
            return;
        }
        answerAtOnce = true;
        end(null, error);
    }

    /**
     * Ends the relay with {@code error}, waiting at most {@code waitMs} for a cancelled worker's
     * final count: a stopping gateway must tell its client before it closes the connection, even
     * at the price of billing what it counted rather than what the worker metered.
     */
    void failWithin(ApiException error, long waitMs) {
        if (stop != null) {
            // Already waiting for its worker (its client left): no longer than the others.
            long left = stop.waitMs - timings.sinceCancelMs();
            if (waitMs < left) {
                cancelTimer(stop.timer);
                stop.timer = awaitFinal(waitMs);
            }
            return;
        }
        stopWaitMs = Math.min(stopWaitMs, waitMs);
        end(null, error);
    }

    /**
     * The one way out. {@code fin}: the worker's final event; {@code error}: a failure to report;
     * neither: the client left. Settles the bill for what was produced, exactly once: at once, or,
     * when the worker is still generating, once {@link #stopWorker} learned its count.
     */
    private void end(Final fin, ApiException error) {
        if (done) {
            return;
        }
        done = true;
        boolean statusSent = sink.committed();  // read before fail(): a JSON sink counts as committed after it
        cancelTimer(holdTimer);
        cancelTimer(keepAliveTimer);
        cancelTimer(deadlineTimer);
        cancelTimer(stallTimer);
        if (call != null && !workerEnded) {
            if (answerAtOnce) {
                cutWorker(error, statusSent);  // the client's own deadline: answered now
            } else {
                stopWorker(error, statusSent);  // client gone, timeout, or the gateway stopping
            }
            return;
        }
        if (call != null) {
            call.end();  // the worker's stream is over; the call's own side closes with it
        }
        settle(fin, error, fin != null ? fin.getUsage() : counted(), fin != null, statusSent);
    }

    /**
     * Stops the worker's sequence and learns what it was metered: a Cancel, then the stream read
     * on (paused no more, its tokens counted) until the worker's Final, whose usage counts the
     * tokens that were on their way as the Cancel went out. A reset would leave the worker
     * metering a few tokens that the gateway never counts, bills or pays, for every cancelled
     * request. Text that still comes goes to a client that is still there before its error: it is
     * billed. A worker that sends no Final in time ({@link #CANCEL_WAIT_MS}) is reset, and what
     * was counted is billed. The worker's Final, or the lack of one, ends the stop
     * ({@link #workerStopped}).
     */
    private void stopWorker(ApiException error, boolean statusSent) {
        stop = new Stop(error, statusSent, stopWaitMs);
        stop.timer = awaitFinal(stop.waitMs);  // first: the resumed stream may hand over the Final within the cancel, which ends the wait
        call.end(GenerateCall.newBuilder().setCancel(Cancel.getDefaultInstance()).build());
        timings.cancelSent();
        if (paused) {
            paused = false;
            stream.resume();
        }
    }

    /**
     * The cut at a client's own deadline: the worker is cancelled as in {@link #stopWorker}, but
     * the client is answered and the request billed now, at the relay's count. The count is frozen
     * for the client: its meter checkpoints no more than it ({@link RequestMeter#billNoMoreThan}),
     * since a payment round's checkpoint is a floor for the settlement, and text that comes after
     * the cut is not sent. The worker's Final, read in the background, settles only what the
     * worker is paid ({@link #cutWorkerStopped}); the relay stays among the running ones until
     * then, so that a stopping gateway's last payment round waits for it.
     */
    private void cutWorker(ApiException error, boolean statusSent) {
        Usage usage = counted();
        // Before the cancel: the worker's stream, resumed, may deliver its Final at once.
        cut = new Cut(error, usage, completionTokens, statusSent);
        if (meter != null) {
            meter.billNoMoreThan(usage);  // before the worker's later tokens are metered
        }
        stopWorker(error, statusSent);
        cut.cost = charge.settle(worker.id(), meter == null ? null : meter.channelId(), usage).cost();
        permit.release(usage.getPromptTokens() + usage.getCompletionTokens());
        // Text held back for a slow reader goes first: it was counted, so it is billed.
        flushPending();
        delivered(sink.fail(error, usage, cut.cost), () -> {
            cut.answered = true;
            cut.answeredNanos = RelayTimings.now();
            reportCut();
        });
    }

    /** The cut worker's Final came (null: its stream ended without one, or it fell silent): it is paid what it metered. */
    private void cutWorkerStopped(Final fin) {
        if (meter != null) {
            meter.finish(fin != null ? fin.getUsage() : null);  // without a Final, what was counted, as for any cut-short attempt
        }
        worker.finished(fin != null ? Integer.toUnsignedLong(fin.getUsage().getCompletionTokens()) : completionTokens);
        if (timings.firstTokenSeen() && !readerPaused) {
            worker.recordSpeed(cut.tokens - 1, timings.generatingNanos());
        }
        reportCut();
        env.running().remove(this);
    }

    /** Reports a cut request once its client was answered and its worker stopped; its total time is the client's. */
    private void reportCut() {
        if (cut.answered && stop == null) {
            report(null, cut.error, cut.told, cut.cost, cut.statusSent, cut.answeredNanos);
        }
    }

    /** What a client answered at its own deadline was told and billed, and when the answer went out. */
    private static final class Cut {
        final ApiException error;
        final Usage told;
        /** The completion tokens counted at the cut: the worker's speed is measured up to it. */
        final long tokens;
        /** The client's status had gone out before the cut. */
        final boolean statusSent;
        UsageCost cost;
        /** The answer was handed to the kernel, at {@link #answeredNanos} ({@link RelayTimings#now}). */
        boolean answered;
        long answeredNanos;

        Cut(ApiException error, Usage told, long tokens, boolean statusSent) {
            this.error = error;
            this.told = told;
            this.tokens = tokens;
            this.statusSent = statusSent;
        }
    }

    /** A stop under way: begun by {@link #stopWorker}, ended by {@link #workerStopped}. */
    private static final class Stop {
        /** What {@link #settle} reports once the stopped worker's count is known. */
        final ApiException error;
        /** The client's status had gone out before the stop. */
        final boolean statusSent;
        /** The wait as the stop began: what a stopping gateway's shorter one is measured against ({@link #failWithin}). */
        final long waitMs;
        /** The wait's timer ({@link #awaitFinal}). */
        long timer = -1;

        Stop(ApiException error, boolean statusSent, long waitMs) {
            this.error = error;
            this.statusSent = statusSent;
            this.waitMs = waitMs;
        }
    }

    /** @return the timer that gives up on the worker's Final after {@code waitMs} */
    private long awaitFinal(long waitMs) {
        return env.vertx().setTimer(waitMs, id -> {
            // Only the full wait says something is wrong with the worker; a short one was chosen
            // (a client's own deadline, a stopping gateway).
            if (waitMs >= CANCEL_WAIT_MS) {
                log.warn("request {}: worker {} sent no final event within {} ms of the cancel; its call is reset and the {}"
                        + " tokens counted are billed", request.id(), worker.id(), waitMs, completionTokens);
            }
            workerStopped(null);
        });
    }

    private void whileStopping(GenerateEvent event) {
        switch (event.getEventCase()) {
            case ACCEPTED -> accepted(event.getAccepted().getPromptTokens());
            case DELTA -> {
                // Counted up to what the request allows: a worker that reads no cancel may stream on for the whole wait.
                long sent = CompletionSink.tokens(event.getDelta());
                long tokens = Math.min(sent, bound.completionTokens() - completionTokens);
                completionTokens += tokens;
                if (meter != null) {
                    meter.completion(tokens);
                }
                if (cut == null) {
                    countLive((int) tokens);  // billed: the worker's Final counts them; after a cut only the worker is paid them
                }
                // Nothing past the bound reaches the client, and the stream is no longer paused:
                // what is held for it stays within one coalesced delta (review Y, Y-3).
                if (!clientGone && cut == null && timings.firstTokenSeen() && tokens == sent
                        && (pendingText == null || pendingText.length() < env.options().coalesceBytes())) {
                    pend(event.getDelta());
                }
            }
            case FINAL -> workerStopped(trusted(event.getFinal()));
            default -> { }
        }
    }

    /**
     * The worker's Final with its usage no more than the relay counted and the request allows
     * ({@link UsageBound}): what is billed and paid. An honest worker's is unchanged; one that
     * claimed more is logged and believed no further, and one that claimed tokens it never sent
     * is counted a failure (a prompt past the bound may be a template longer than announced).
     */
    private Final trusted(Final claimed) {
        // A sequence that stops at its end-of-sequence token counts it, and sends no text for it.
        long sent = completionTokens + (claimed.getFinishReason() == FinishReason.FINISH_REASON_STOP ? 1 : 0);
        Usage usage = bound.trusted(claimed.getUsage(), sent);
        if (usage == claimed.getUsage()) {
            return claimed;
        }
        warnOverClaim(claimed.getUsage(), "billed and paid prompt " + usage.getPromptTokens() + ", completion " + usage.getCompletionTokens());
        if (usage.getCompletionTokens() != claimed.getUsage().getCompletionTokens()) {
            env.registry().failed(worker);
        }
        return claimed.toBuilder().setUsage(usage).build();
    }

    /** One WARN line for a Final that claimed more than its worker sent or the request allows: its counts, never its text. */
    private void warnOverClaim(Usage claimed, String outcome) {
        log.warn("request {}: worker {} reported usage past what it sent and the request allows (prompt {}, completion {}; "
                + "{} completion tokens relayed); {}", request.id(), worker.id(), Integer.toUnsignedLong(claimed.getPromptTokens()),
                Integer.toUnsignedLong(claimed.getCompletionTokens()), completionTokens, outcome);
    }

    /** @param fin the stopped worker's Final; null when its stream ended without one, or it fell silent */
    private void workerStopped(Final fin) {
        if (stop == null) {
            return;
        }
        Stop stopped = stop;
        stop = null;
        cancelTimer(stopped.timer);
        if (fin == null) {
            call.cancel();
        } else {
            timings.cancelAnswered();
        }
        if (cut != null) {
            cutWorkerStopped(fin);
            return;
        }
        settle(null, stopped.error, fin != null ? fin.getUsage() : counted(), fin != null, stopped.statusSent);
    }

    /** The usage this relay counted: the prompt the worker reported and the tokens it streamed. */
    private Usage counted() {
        return Usage.newBuilder().setPromptTokens((int) promptTokens).setCompletionTokens((int) completionTokens).build();
    }

    /**
     * Bills {@code usage}, pays the worker, tells the client (unless it left) and reports.
     *
     * @param fin          the worker's Final when it ended the request by itself; null otherwise
     * @param workerCount  {@code usage} is the worker's own count (from a Final), not the relay's
     */
    private void settle(Final fin, ApiException error, Usage usage, boolean workerCount, boolean statusSent) {
        RequestBilling.Settling settling = charge.settle(worker == null ? null : worker.id(),
                meter == null ? null : meter.channelId(), usage);
        UsageCost cost = settling.cost();
        if (meter != null) {
            meter.finish(workerCount ? usage : null);
        }
        if (fin != null || error != null) {
            // The usage the client is shown is what the ledger charges: send it once the settlement
            // is committed, or kept for the ledger's return (failed or not: the client is owed its
            // final events either way). Text held back for a slow reader goes first: it is billed.
            // At a client's own deadline the answer cannot wait for the ledger: it goes now, with
            // the cost the settlement just handed to the ledger charges.
            Runnable tell = () -> {
                flushPending();
                delivered(fin != null ? sink.finish(fin, cost) : sink.fail(error, usage, cost),
                        () -> report(fin, error, usage, cost, statusSent));
            };
            if (answerAtOnce) {
                tell.run();
            } else {
                whenDone(settling.accounted(), tell);
            }
        }
        permit.release(usage.getPromptTokens() + usage.getCompletionTokens());
        if (worker != null) {
            worker.finished(usage.getCompletionTokens());
            if (fin != null) {
                worker.succeeded();
            }
            // Its rate from first to last token, however the request ended (counting finished ones
            // only, a worker whose clients all pressed Stop stayed unmeasured: audit H, H-7); not
            // when a slow reader paused the stream, which then timed the reader.
            if (timings.firstTokenSeen() && !readerPaused) {
                worker.recordSpeed(completionTokens - 1, timings.generatingNanos());
            }
        }
        if (fin == null && error == null) {
            report(null, null, usage, cost, statusSent);  // the client left: nothing more goes out
        }
        // Last: a stopping gateway's final payment round starts once no relay runs, and must find
        // this one's fee among the finished ones.
        env.running().remove(this);
    }

    /**
     * Runs {@code then} once the response's last write went out (handed to the kernel: what its
     * socket buffers still hold, the client has not read yet), so that a request's reported end
     * includes the settlement and a slow reader's catching up. A client that reads none of it for {@code stallTimeoutMs}
     * has stopped reading: its response is dropped, as it would be midway.
     */
    private void delivered(Future<Void> lastWrite, Runnable then) {
        long timer = lastWrite.isComplete() ? -1 : env.vertx().setTimer(env.options().stallTimeoutMs(), id -> {
            dropStalledClient();
            then.run();  // now: a gRPC call cannot be cancelled once its trailers are queued, so its write may never end
        });
        lastWrite.onComplete(written -> {
            cancelTimer(timer);
            clientGone |= written.failed();
            then.run();
        });
    }

    /** Runs {@code then} on this relay's event loop once {@code stage} is complete (at once if it is). */
    private void whenDone(CompletionStage<?> stage, Runnable then) {
        if (stage.toCompletableFuture().isDone()) {
            then.run();
        } else {
            stage.whenComplete((ignored, failure) -> context.runOnContext(v -> then.run()));
        }
    }

    private void report(Final fin, ApiException error, Usage usage, UsageCost cost, boolean statusSent) {
        report(fin, error, usage, cost, statusSent, RelayTimings.now());
    }

    /** @param endNanos when the request ended for its client ({@link RelayTimings#now}) */
    private void report(Final fin, ApiException error, Usage usage, UsageCost cost, boolean statusSent, long endNanos) {
        if (reported) {
            return;
        }
        reported = true;
        // A client that stopped reading did not leave: the gateway dropped it, as its client_stalled says.
        int status = statusSent ? 200 : clientGone && !stalled ? RequestOutcome.CLIENT_CLOSED_REQUEST
                : error == null ? 200 : error.kind().httpStatus;
        String finish = fin == null ? null : switch (fin.getFinishReason()) {
            case FINISH_REASON_LENGTH -> "length";
            case FINISH_REASON_STOP -> "stop";
            default -> fin.getFinishReason().name();
        };
        env.observer().finished(new RequestOutcome(request.id(), request.keyId(), request.path(), request.route().model(),
                request.route().tier(), request.stream(), lastWorkerId, tried.size(), status,
                error != null ? (error.kind().code == null ? error.kind().type : error.kind().code) : stalled ? STALLED : null, finish,
                usage.getPromptTokens(), usage.getCompletionTokens(), cost == null ? 0 : cost.totalCost(), timings.queueNanos(),
                timings.timeToFirstTokenNanos(), timings.overheadNanos(), timings.totalNanos(endNanos), clientGone,
                timings.cancelNanos(), liveTokens, charge.takeCountedProgress()));
        env.running().reported(this);
    }

    /** The access log's and the error metric's code for a client that stopped reading. */
    public static final String STALLED = "client_stalled";

    private void cancelTimer(long id) {
        if (id >= 0) {
            env.vertx().cancelTimer(id);
        }
    }

    /** The worker refused or failed before its final event. */
    static ApiException failureOf(GrpcClientResponse<?, ?> response) {
        GrpcStatus status = response.status();
        String message = ErrorTrailers.message(response);
        String detail = message == null || message.isEmpty() ? "gRPC status " + status : message;
        // What the worker's own refusals name in their trailers; gRPC's refusals have none.
        ErrorKind named = ErrorTrailers.kind(response);
        return switch (status) {
            case INVALID_ARGUMENT -> new ApiException(named != null && named.grpcStatus == GrpcStatus.INVALID_ARGUMENT
                    ? named : ErrorKind.INVALID_REQUEST, ErrorTrailers.param(response), detail);
            case NOT_FOUND -> new ApiException(ErrorKind.MODEL_NOT_FOUND, "model", detail);
            // Without the worker's "busy", this is gRPC's answer to a message over the worker's size limit.
            case RESOURCE_EXHAUSTED -> named == ErrorKind.NO_CAPACITY ? busy(detail)
                    : new ApiException(ErrorKind.PAYLOAD_TOO_LARGE, "The request is larger than the worker accepts (" + detail + ").");
            // A forwarding worker whose upstream server failed names it; any other UNAVAILABLE is a busy or stopping worker.
            case UNAVAILABLE -> named == ErrorKind.UPSTREAM ? new ApiException(ErrorKind.UPSTREAM, detail) : busy(detail);
            default -> new ApiException(ErrorKind.UPSTREAM, "The worker ended the stream without a result: " + detail);
        };
    }

    private static ApiException busy(String detail) {
        return ApiException.retryLater(ErrorKind.NO_CAPACITY, "The worker is busy: " + detail, 1);
    }
}
