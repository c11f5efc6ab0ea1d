package org.cocoonjvm.gateway.relay;

import io.vertx.core.AsyncResult;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import java.util.HashSet;
import java.util.Set;
import org.cocoonjvm.gateway.billing.RequestMeter;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.grpc.Cancel;
import org.cocoonjvm.protocol.grpc.GenerateCall;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ErrorTrailers;

/**
 * A relay's worker calls: which workers it tried, the one it is on now (its bound, its meter, its
 * call and stream), and the retry of a failed attempt on another before the first token. Apart
 * from {@link Relay} because this state changes only at an attempt's start and end, never per
 * token: the relay reads it on every event, and only this class writes it. Owned by the relay's
 * event loop, as the relay is.
 */
final class Attempts {
    private final Relay relay;
    private final Set<String> tried = new HashSet<>();
    /** The worker of the latest attempt, kept when it failed: the one the log names for what was billed. */
    private String lastWorkerId;
    private ApiException lastFailure;
    private RegisteredWorker worker;
    /** The most usage the current attempt's worker may bill: the hold's, or widened to what that worker announced. */
    private UsageBound bound;
    /** The current attempt's worker fee, metered into the worker's payment channel; null without one. */
    private RequestMeter meter;
    private GrpcClientRequest<GenerateCall, GenerateEvent> call;
    private GrpcClientResponse<GenerateCall, GenerateEvent> stream;
    /** The current attempt's worker stream is over: its Final came, it ended without one, or it broke. */
    private boolean workerEnded;

    Attempts(Relay relay) {
        this.relay = relay;
    }

    /** Picks the next worker (or fails the request when none is left), meters it, and opens its call. */
    void next() {
        Relay.Request request = relay.request;
        RegisteredWorker next;
        try {
            next = relay.env.registry().pick(new WorkerRegistry.Route(request.route().model(), request.route().tier(), tried,
                    request.route().affinityKey()));
        } catch (ApiException e) {
            // A retry with no worker left to take it (its worker's registration, likely the model's
            // last, went with the failure): the request failed on a worker, and that is what it is told.
            boolean noneLeft = e.kind() == ErrorKind.MODEL_NOT_FOUND || e.kind() == ErrorKind.NO_CAPACITY;
            relay.fail(noneLeft && lastFailure != null ? lastFailure : e);
            return;
        }
        if (next == null) {
            relay.fail(lastFailure);
            return;
        }
        worker = next;
        bound = boundFor(next);
        workerEnded = false;
        tried.add(next.id());
        lastWorkerId = next.id();
        next.started();
        WorkerChannel paidBy = next.channel();  // once: a replacement may take its place meanwhile
        meter = paidBy == null ? null : paidBy.meter(next.id(), request.generate().getModel(), relay.charge);
        GenerateRequest generate = paidBy == null ? request.generate()
                : request.generate().toBuilder().setChannelId(paidBy.idBytes()).build();
        relay.timings.attemptStarted();
        EventLoopTimers.Timer opening = boundOpening(next);
        relay.env.grpc().request(next.address(), GenerateEventDecoder.GENERATE).onComplete(opened -> onCallOpened(next, generate, opening, opened));
    }

    /**
     * The bound of an attempt on {@code next}: the hold's, widened to the context and chat template
     * it announced where they are larger (it registered after admission), within what the
     * reservation covers (review Y, Y-4).
     */
    private UsageBound boundFor(RegisteredWorker next) {
        ModelRef announced = next.model(relay.request.route().model());  // a picked worker serves the model
        UsageBound.Hold hold = relay.request.hold();
        return hold.boundFor(announced.getMaxContext(), WorkerRegistry.chatTemplateTokens(announced, hold.chatMessages()),
                relay.charge::covers);
    }

    /**
     * A worker that froze before this front had a connection to it never completes one (its
     * kernel accepts, nothing answers): no PING can find it, so the call's opening is bounded.
     *
     * @return the timer, cancelled once the call opened or failed to
     */
    private EventLoopTimers.Timer boundOpening(RegisteredWorker next) {
        long silence = relay.env.registry().silenceLimitMs();
        return relay.env.timers().set(silence, v -> {
            if (!relay.done && worker == next && call == null) {
                relay.attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker did not take the call within " + silence + " ms."), true);
            }
        });
    }

    /** The attempt's call to {@code next} opened, or could not: the request is written on it, and its answer awaited. */
    private void onCallOpened(RegisteredWorker next, GenerateRequest generate, EventLoopTimers.Timer opening,
                              AsyncResult<GrpcClientRequest<GenerateCall, GenerateEvent>> opened) {
        opening.cancel();
        if (relay.done || worker != next) {
            if (opened.succeeded()) {
                opened.result().cancel();
            }
            return;
        }
        if (opened.failed()) {
            relay.attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker could not be reached: " + opened.cause().getMessage()), true);
            return;
        }
        call = opened.result();
        // Not ended with it: the call stays open for a Cancel (see sendCancel).
        call.write(GenerateCall.newBuilder().setStart(generate).build());
        relay.timings.forwarded();
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
        if (relay.stop.awaiting()) {
            if (answered.succeeded()) {
                pipe(next, answered.result());
            } else {
                relay.stop.workerStopped(null);
            }
            return;
        }
        if (relay.done) {
            return;
        }
        if (answered.failed()) {
            relay.attemptFailed(new ApiException(ErrorKind.UPSTREAM, "The worker failed: " + answered.cause().getMessage()), true);
        } else {
            pipe(next, answered.result());
        }
    }

    private void pipe(RegisteredWorker from, GrpcClientResponse<GenerateCall, GenerateEvent> response) {
        stream = response;
        relay.pipe(from, response);
    }

    /**
     * The failed attempt's meter and call are let go, and another worker is tried while the request is not at
     * fault and attempts are left; else the request fails. Only before the first token.
     *
     * @param withFinal the worker ended the attempt with a failed Final (it took its prompt back:
     *                  nobody pays for it); false when its stream ended without one, or was cut
     */
    void retry(ApiException failure, boolean withFinal) {
        if (meter != null) {
            meter.billNoMoreThan(Usage.getDefaultInstance());  // it costs the client nothing (see Relay#attemptFailed)
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
        if (retryable && tried.size() < relay.env.options().maxAttempts()) {
            next();
        } else {
            relay.fail(failure);
        }
    }

    /** The current attempt's worker stream is over: its Final came, it ended without one, or it broke. */
    void workerEnded() {
        workerEnded = true;
    }

    /** Whether the current attempt's worker is still generating: its call open, its stream not over. */
    boolean generating() {
        return call != null && !workerEnded;
    }

    /** The relay ended after the worker's stream did: the call's own side closes with it. */
    void endCall() {
        if (call != null) {
            call.end();
        }
    }

    /** Asks the worker to stop its sequence and send its Final; the stream is read on for it. */
    void sendCancel() {
        call.end(GenerateCall.newBuilder().setCancel(Cancel.getDefaultInstance()).build());
    }

    /** Resets the call: the worker sent no Final, or its stream is over without one. */
    void cancelCall() {
        call.cancel();
    }

    /** Resets the call of a worker that broke the contract, and counts its stream over: nothing more is written on it. */
    void dropCall() {
        workerEnded = true;
        call.cancel();
        call = null;
    }

    RegisteredWorker worker() {
        return worker;
    }

    UsageBound bound() {
        return bound;
    }

    RequestMeter meter() {
        return meter;
    }

    GrpcClientResponse<GenerateCall, GenerateEvent> stream() {
        return stream;
    }

    String lastWorkerId() {
        return lastWorkerId;
    }

    int triedCount() {
        return tried.size();
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
