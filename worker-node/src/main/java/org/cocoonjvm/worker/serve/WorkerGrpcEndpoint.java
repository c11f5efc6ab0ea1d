package org.cocoonjvm.worker.serve;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vertx.grpc.server.GrpcServerResponse;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.Supplier;
import org.cocoonjvm.protocol.grpc.Accepted;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateCall;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.grpc.WorkerGrpcService;
import org.cocoonjvm.protocol.grpc.WorkerStatus;
import org.cocoonjvm.protocol.openai.ErrorTrailers;
import org.cocoonjvm.worker.scheduler.EventTarget;
import org.cocoonjvm.worker.scheduler.GenerationException;

/** The worker's side of the gRPC contract: {@code Generate} and {@code Status}. */
final class WorkerGrpcEndpoint {
    private final Vertx vertx;
    private final Submitter submitter;
    private final Supplier<WorkerStatus> status;
    /**
     * When a request may be submitted (WorkerPayments.ready): refuses, by throwing
     * GenerationException, one its payer must not send, and holds one naming the channel the
     * gateway has just offered until this worker has opened it.
     */
    private final Function<GenerateRequest, CompletableFuture<Void>> paymentReady;

    /**
     * The PING in flight on each connection: after a stall every stream on it waits for a round
     * trip, and one PING each, thousands at once, would trip the gateway's flood guard, which
     * closes the connection and every stream on it (review W, W-6). One sent before the loop's
     * latest stall is not joined: its answer may have come during the stall, ahead of a reset
     * the gateway sent after giving up (review Y, Y-8).
     */
    private final Map<HttpConnection, Ping> pings = new ConcurrentHashMap<>();

    private record Ping(Future<Buffer> answer, long sentNanos) {}

    /** One per event loop that serves calls, keyed by its thread: a stall is the loop's, whichever stream sees it. */
    private final Map<Thread, LoopWatch> loopWatches = new ConcurrentHashMap<>();

    private Supplier<Future<Buffer>> pingOnce(HttpConnection connection, LoopWatch loop) {
        return () -> {
            Ping ping = pings.compute(connection, (c, inFlight) -> {
                if (inFlight != null && !loop.stalledSince(inFlight.sentNanos())) {
                    return inFlight;
                }
                long sent = System.nanoTime();
                return new Ping(c.ping(Buffer.buffer(new byte[8])), sent);
            });
            ping.answer().onComplete(done -> pings.remove(connection, ping));
            return ping.answer();
        };
    }

    WorkerGrpcEndpoint(Vertx vertx, Submitter submitter, Supplier<WorkerStatus> status,
                       Function<GenerateRequest, CompletableFuture<Void>> paymentReady) {
        this.vertx = vertx;
        this.submitter = submitter;
        this.status = status;
        this.paymentReady = paymentReady;
    }

    void bind(GrpcServer server) {
        server.callHandler(WorkerGrpcService.Generate, this::generate);
        server.callHandler(WorkerGrpcService.Status, call -> call.handler(request -> call.response().end(status.get())));
    }

    private void generate(GrpcServerRequest<GenerateCall, GenerateEvent> call) {
        LoopWatch watch = loopWatches.computeIfAbsent(Thread.currentThread(), loop -> new LoopWatch(vertx));
        GrpcTarget target = new GrpcTarget(call.response(), pingOnce(call.connection(), watch), watch);
        // A reset (the gateway gave up on the call, or its connection went) stops the sequence.
        call.errorHandler(error -> target.reset());
        call.exceptionHandler(failure -> target.reset());
        target.response.exceptionHandler(failure -> target.reset());
        call.handler(message -> {
            if (message.hasStart() && !target.started) {
                target.started = true;
                start(target, message.getStart());
            } else if (message.hasCancel() && target.started) {
                // Unlike a reset, a cancel keeps the response open: its Final tells the gateway what
                // the sequence was metered, the tokens still on their way to it included.
                target.cancel();
            } else {
                target.refuse(GrpcStatus.INVALID_ARGUMENT, message.hasStart() ? "a Generate call starts one sequence; a second start was sent"
                        : message.hasCancel() ? "a cancel came before the call's start" : "an empty GenerateCall message");
            }
        });
        // A half-close after the start is a caller that will not cancel (a server-streaming client); before it, a mistake.
        call.endHandler(v -> {
            if (!target.started) {
                target.refuse(GrpcStatus.INVALID_ARGUMENT, "the call ended before its start");
            }
        });
    }

    private void start(GrpcTarget target, GenerateRequest request) {
        CompletableFuture<Void> ready;
        try {
            ready = paymentReady.apply(request);
        } catch (GenerationException refused) {
            target.refuse(refused);
            return;
        }
        if (ready.isDone()) {
            submit(target, request);
        } else {
            Future.fromCompletionStage(ready, Vertx.currentContext()).onComplete(v -> {
                if (target.cancelledBeforeSubmit) {
                    target.finish(Final.newBuilder().setFinishReason(FinishReason.FINISH_REASON_CANCELLED)
                            .setUsage(Usage.getDefaultInstance()).build());  // nothing ran: nothing metered
                } else if (!target.closed) {
                    submit(target, request);
                }
            });
        }
    }

    private void submit(GrpcTarget target, GenerateRequest request) {
        target.running = submitter.submit(vertx, request, target);
        target.running.queued().onFailure(failure -> {
            if (failure instanceof GenerationException refused) {
                target.refuse(refused);
            } else {
                target.refuse(GrpcStatus.INTERNAL, "worker error");
            }
        });
    }

    /** Writes one sequence's events to its gRPC response; owned by the call's event loop. */
    private static final class GrpcTarget implements EventTarget {
        private final GrpcServerResponse<GenerateCall, GenerateEvent> response;
        /** A PING round trip on the stream's connection, shared with its other streams. */
        private final Supplier<Future<Buffer>> ping;
        private boolean started;
        /** Null until the sequence was submitted. */
        private Submitter.Cancellable running;
        /** The response is over: ended, refused or reset. */
        private boolean closed;
        /** Cancelled while it waited for its channel, before anything was submitted. */
        private boolean cancelledBeforeSubmit;
        /** What waits for the answer to this stream's PING (afterRoundTrip); null when nothing does. */
        private Runnable afterPing;
        private final LoopWatch loop;

        GrpcTarget(GrpcServerResponse<GenerateCall, GenerateEvent> response, Supplier<Future<Buffer>> ping, LoopWatch loop) {
            this.response = response;
            this.ping = ping;
            this.loop = loop;
        }

        void cancel() {
            if (running != null) {
                running.cancel();
            } else {
                cancelledBeforeSubmit = true;
            }
        }

        void reset() {
            closed = true;
            cancel();
            roundTripDone();
        }

        /**
         * The refusal's status, with its code and param as trailers: the gateway tells a context
         * window from any other invalid request, and this worker's "busy" from gRPC's own
         * {@code RESOURCE_EXHAUSTED} for a message over the size limit, by them.
         */
        void refuse(GenerationException refused) {
            if (!closed) {
                closed = true;
                ErrorTrailers.write(response.trailers(), refused.toApiException());
                response.status(refused.reason().grpcStatus).end();  // the message is among ErrorTrailers' trailers
            }
        }

        /** Ends the call with {@code status}; what it started is stopped (a caller that broke the contract). */
        void refuse(GrpcStatus status, String why) {
            cancel();
            if (!closed) {
                closed = true;
                response.status(status).statusMessage(why).end();
            }
        }

        @Override
        public void accepted(int promptTokens) {
            if (!closed) {
                response.write(GenerateEvent.newBuilder().setAccepted(Accepted.newBuilder().setPromptTokens(promptTokens)).build());
            }
        }

        @Override
        public void delta(Delta delta) {
            if (!closed) {
                response.write(GenerateEvent.newBuilder().setDelta(delta).build());
            }
        }

        @Override
        public void finish(Final fin) {
            if (!closed) {
                closed = true;
                response.end(GenerateEvent.newBuilder().setFinal(fin).build());
            }
        }

        @Override
        public boolean writeQueueFull() {
            return !closed && response.writeQueueFull();
        }

        @Override
        public boolean gone() {
            return closed;
        }

        @Override
        public boolean stalledLately() {
            return loop.stalledLately();
        }

        /**
         * A PING; the stream's reset, when it comes first, ends the wait (a PING on a connection
         * that closes is not always answered with a failure).
         */
        @Override
        public void afterRoundTrip(Runnable then) {
            if (closed) {
                then.run();
                return;
            }
            Runnable waiting = afterPing;
            afterPing = waiting == null ? then : () -> {
                waiting.run();
                then.run();
            };
            ping.get().onComplete(answered -> {
                if (answered.failed()) {
                    reset();
                } else {
                    roundTripDone();
                }
            });
        }

        private void roundTripDone() {
            Runnable then = afterPing;
            afterPing = null;
            if (then != null) {
                then.run();
            }
        }

        @Override
        public void drainHandler(Handler<Void> handler) {
            response.drainHandler(handler);
        }
    }
}
