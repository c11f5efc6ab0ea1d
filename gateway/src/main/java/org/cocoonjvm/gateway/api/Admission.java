package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.limits.RateLimiter;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.gateway.relay.EventLoopTimers;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.gateway.relay.UsageBound;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ValidRequest;

/**
 * The front door every completion passes, whichever API it came by (OpenAI HTTP or gRPC
 * {@code Inference}): take the key's rate-limit permit, reserve the most the request can cost,
 * and name it. Either all of that succeeds and the caller holds an {@link Admitted} request, whose
 * {@link Relay} will settle both, or nothing is held and an {@link ApiException} says why.
 *
 * <p>The reservation may wait on the ledger's database; it runs on the ledger's threads and the
 * answer comes back on the caller's event loop, which never blocks.
 */
public final class Admission {
    private final Relay.Env relay;
    private final RateLimiter limiter;
    private final RequestBilling billing;

    public Admission(Relay.Env relay, RateLimiter limiter, RequestBilling billing) {
        this.relay = relay;
        this.limiter = limiter;
        this.billing = billing;
    }

    /** The timers of this front's event loop: a request's steps before admission are bounded there too. */
    EventLoopTimers timers() {
        return relay.timers();
    }

    /**
     * Call on the request's event loop; the future completes there.
     *
     * @param path         what it was sent to (an HTTP path or a gRPC method's), for its access-log line
     * @param arrivalNanos when the gateway had the request ({@link System#nanoTime})
     * @return the admitted request, or failed with an {@link ApiException} ({@code RATE_LIMITED},
     *         {@code INSUFFICIENT_BALANCE}, {@code MODEL_NOT_FOUND}, {@code LEDGER_UNAVAILABLE} if
     *         the ledger cannot be reached, or {@code INTERNAL} for an unexpected failure); then
     *         nothing is held
     */
    public Future<Admitted> admit(ApiKey key, ValidRequest request, String path, long arrivalNanos) {
        int context = relay.registry().maxContext(request.model());
        long maxTokens = request.maxTokens() > 0 ? request.maxTokens() : Math.max(context, 1);
        // Bytes bound the tokens of the messages' text; the chat template's own (a default system
        // prompt, role markers) come on top: left out, a one-word chat would hold half of what it
        // costs, and concurrent ones would overdraw small balances (audit H, H-2).
        long templateTokens = request.chatMessages() > 0 ? relay.registry().chatTemplateTokens(request.model(), request.chatMessages()) : 0;
        long promptBytes = request.promptBytes() + templateTokens;
        long estimatedTokens = promptBytes + maxTokens;
        UsageBound.Hold hold = new UsageBound.Hold(request.promptBytes(), templateTokens, request.chatMessages(), maxTokens,
                request.maxTokens() > 0);
        return permit(key, estimatedTokens, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RUNNING_MAY_END_MS))
                .compose(permit -> {
                    String id = RequestIds.completion(request.idPrefix());
                    return Future.fromCompletionStage(billing.reserve(id, key.id(), key.accountId(), request.model(), maxTokens,
                                    promptBytes), relay.vertx().getOrCreateContext())
                            .<Admitted>map(charge -> new Admitted(relay, new Relay.Request(id, key.id(), path, request.generate(id),
                                    new WorkerRegistry.Route(request.model(), request.tier(), Set.of(), request.prefixHash()),
                                    request.stream(), arrivalNanos, hold),
                                    permit, charge))
                            .recover(failure -> {
                                permit.release(0);
                                return Future.failedFuture(apiException(failure, "The gateway could not reserve funds for this request; try again."));
                            });
                });
    }

    /**
     * How long a request refused for what a running request of its key holds waits for one to
     * end. A client that cancels a stream and at once sends its next request reaches the gateway
     * before its cancel can: grpc-js writes the new call's frames ahead of the old one's
     * RST_STREAM (the gateway read the cancel 3 to 10 ms after the new call), and over HTTP/1 a new
     * connection may be read on another event loop before the old one's close. Refused at once,
     * that client got a 429 and {@code Retry-After: 1} every time.
     */
    private static final long RUNNING_MAY_END_MS = 100;
    /** How often such a request looks again: its wait ends a few ms after the permit comes back. */
    private static final long RECHECK_MS = 5;

    private Future<RateLimiter.Permit> permit(ApiKey key, long estimatedTokens, long waitUntilNanos) {
        try {
            return Future.succeededFuture(limiter.acquire(key.id(), key.limits(), estimatedTokens));
        } catch (RateLimiter.Refused refused) {
            if (!refused.runningMayLift() || System.nanoTime() >= waitUntilNanos) {
                return Future.failedFuture(refused.reason());
            }
            Promise<RateLimiter.Permit> later = Promise.promise();
            relay.vertx().setTimer(RECHECK_MS, id -> permit(key, estimatedTokens, waitUntilNanos).onComplete(later));
            return later.future();
        }
    }

    /** What billing refused with ({@link ApiException}), or {@code INTERNAL} with {@code message} for an unexpected failure. */
    static ApiException apiException(Throwable failure, String message) {
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
        if (cause instanceof ApiException api) {
            return api;
        }
        return new ApiException(ErrorKind.INTERNAL, message);
    }

    /** An admitted request: it holds a rate-limit permit and a reservation until its relay settles them. */
    public static final class Admitted {
        private final Relay.Env env;
        private final Relay.Request request;
        private final RateLimiter.Permit permit;
        private final RequestBilling.Charge charge;

        private Admitted(Relay.Env env, Relay.Request request, RateLimiter.Permit permit, RequestBilling.Charge charge) {
            this.env = env;
            this.request = request;
            this.permit = permit;
            this.charge = charge;
        }

        /** The request's id: in the access log, sent to the worker, shown to the client. */
        public String id() {
            return request.id();
        }

        /**
         * The relay that takes over the permit and reservation, not yet started: hook up the
         * client's disconnect to {@link Relay#clientGone}, then {@link Relay#start}. Call once.
         */
        public Relay relay(CompletionSink sink) {
            return new Relay(env, request, sink, permit, charge);
        }
    }
}
