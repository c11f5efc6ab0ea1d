package org.cocoonjvm.worker.serve;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.util.UUID;
import java.util.function.Function;
import java.util.function.Supplier;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.grpc.WorkerStatus;
import org.cocoonjvm.protocol.openai.AllowedMethods;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.openai.CompletionMeta;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.JsonWriter;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.openai.RequestParser;
import org.cocoonjvm.protocol.openai.SseWriter;
import org.cocoonjvm.protocol.openai.ValidRequest;
import org.cocoonjvm.protocol.transport.RequestLineVersions;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.payments.Earnings;
import org.cocoonjvm.worker.payments.OwnerAddresses;
import org.cocoonjvm.worker.payments.WorkerPayments;
import org.cocoonjvm.worker.scheduler.EventTarget;
import org.cocoonjvm.worker.scheduler.GenerationException;

/**
 * The worker's own OpenAI-compatible API, for operators checking their worker and as the
 * no-gateway baseline in overhead benchmarks. Requests go straight to the local generator.
 */
final class WorkerHttpApi {
    static final long MAX_BODY_BYTES = 4 * 1024 * 1024;

    private final Vertx vertx;
    private final Submitter submitter;
    private final ModelInfo model;
    private final Supplier<WorkerStatus> status;
    /** Where the worker stands with its gateway ({@link Registration#toJson}); null without one. */
    private final Supplier<JsonObject> gateway;
    private final WorkerPayments payments;
    /** The lifetime earnings, given this run's load. */
    private final Function<WorkerLoad, Earnings> earnings;
    private final WorkerMetrics metrics;
    /** Digest of the bearer key; null when the API is open (loopback-only setups). */
    private final String apiKeyHash;

    WorkerHttpApi(Vertx vertx, Submitter submitter, ModelInfo model, Supplier<WorkerStatus> status,
                  Supplier<JsonObject> gateway, WorkerPayments payments, Function<WorkerLoad, Earnings> earnings,
                  WorkerMetrics metrics, String apiKey) {
        this.gateway = gateway;
        this.payments = payments;
        this.earnings = earnings;
        this.metrics = metrics;
        this.vertx = vertx;
        this.submitter = submitter;
        this.model = model;
        this.status = status;
        this.apiKeyHash = apiKey == null ? null : BearerKeys.hash(apiKey);
    }

    Router router() {
        Router router = Router.router(vertx);
        // /status shows the payment channels' signed states and what the gateway still owes: the key guards it too.
        router.route("/status").handler(this::authenticate);
        router.get("/status").handler(this::status);
        // What the worker was paid, channel by channel: its owner's business, like /status.
        router.route("/earnings").handler(this::authenticate);
        router.get("/earnings").handler(ctx -> OpenAiResponses.json(ctx.response(),
                earnings.apply(status.get().getLoad()).toJson().encode()));
        // /metrics exports the same earnings per channel, so unlike the gateway's it is not open:
        // a Prometheus job sends the key as its bearer token (authorization.credentials).
        router.route("/metrics").handler(this::authenticate);
        router.get("/metrics").handler(metrics::serve);
        router.route("/v1/*").handler(this::authenticate);
        router.get("/v1/models").handler(this::models);
        router.post("/v1/*").handler(BodyHandler.create(false).setBodyLimit(MAX_BODY_BYTES));
        router.post("/v1/chat/completions").handler(ctx -> complete(ctx, RequestParser::chat));
        router.post("/v1/completions").handler(ctx -> complete(ctx, RequestParser::completion));
        // A known path asked with a method it does not answer (POST /earnings) is a 405 naming the
        // ones it does, as at the gateway; only an unknown path is a 404 (audit P, P-10).
        router.route().last().handler(ctx -> {
            String allowed = AllowedMethods.of(router, ctx.normalizedPath());
            if (allowed.isEmpty()) {
                OpenAiResponses.error(ctx.response(), new ApiException(ErrorKind.NOT_FOUND,
                        "No route for " + ctx.request().method() + " " + ctx.request().path() + "."));
                return;
            }
            ctx.response().putHeader("Allow", allowed);
            OpenAiResponses.error(ctx.response(), new ApiException(ErrorKind.METHOD_NOT_ALLOWED,
                    ctx.request().method() + " is not allowed on " + ctx.request().path() + "; use " + allowed + "."));
        });
        router.errorHandler(413, ctx -> OpenAiResponses.error(ctx.response(), new ApiException(ErrorKind.PAYLOAD_TOO_LARGE,
                "The request body exceeds " + MAX_BODY_BYTES + " bytes.")));
        return router;
    }

    /**
     * An HTTP/1 request Netty's codec could not read. A version this worker does not serve gets
     * the 505 the gateway answers (protocol's {@link RequestLineVersions}) with the OpenAI error
     * body, and the connection closes after it, as Vert.x's own answers close it: what follows on
     * it cannot be framed. Anything else keeps Vert.x's answer (400, 414, 431, no body).
     */
    static void refuseUnreadable(HttpServerRequest request) {
        if (request.decoderResult().cause() instanceof RequestLineVersions.Unsupported unsupported) {
            request.response().putHeader(HttpHeaders.CONNECTION, "close");
            OpenAiResponses.error(request.response(), unsupported.toApiException()).onComplete(v -> request.connection().close());
        } else {
            HttpServerRequest.DEFAULT_INVALID_REQUEST_HANDLER.handle(request);
        }
    }

    private void authenticate(RoutingContext ctx) {
        if (apiKeyHash == null || BearerKeys.carries(ctx.request(), apiKeyHash)) {
            ctx.next();
        } else {
            OpenAiResponses.error(ctx.response(), BearerKeys.missingOrInvalid());
        }
    }

    private void complete(RoutingContext ctx, Function<Buffer, ValidRequest> parser) {
        ValidRequest request;
        try {
            request = parser.apply(ctx.body().buffer());
        } catch (ApiException e) {
            OpenAiResponses.error(ctx.response(), e);
            return;
        }
        String id = request.idPrefix() + UUID.randomUUID();
        CompletionMeta meta = request.meta(id, false);
        CompletionSink sink = request.stream() ? new SseWriter(ctx.request(), meta) : new JsonWriter(ctx.request(), meta);
        Submitter.Cancellable running = submitter.submit(vertx, request.generate(id), new SinkTarget(sink,
                request.continuousUsage() ? Usage.newBuilder() : null));
        ctx.response().closeHandler(v -> running.cancel());
        running.queued().onFailure(failure -> sink.fail(failure instanceof GenerationException refused
                ? refused.toApiException() : OpenAiResponses.asApiException(failure)));
    }

    private void models(RoutingContext ctx) {
        JsonObject entry = new JsonObject().put("id", model.name()).put("object", "model").put("created", 0)
                .put("owned_by", "cocoon").put("hash", model.hash()).put("max_context", model.maxContext());
        OpenAiResponses.json(ctx.response(), new JsonObject().put("object", "list").put("data", new JsonArray().add(entry)).encode());
    }

    private void status(RoutingContext ctx) {
        WorkerStatus s = status.get();
        JsonArray models = new JsonArray();
        s.getModelsList().forEach(m -> models.add(new JsonObject().put("name", m.getName()).put("hash", m.getHash())
                .put("max_context", m.getMaxContext())));
        JsonObject load = new JsonObject().put("running", s.getLoad().getRunning()).put("waiting", s.getLoad().getWaiting())
                .put("capacity", s.getLoad().getCapacity()).put("tokens_generated", s.getLoad().getTokensGenerated())
                .put("prompt_tokens", s.getLoad().getPromptTokens());
        JsonObject link = gateway.get();
        // Serving only once a gateway routes to it: a worker its gateway refused, or cannot reach,
        // earns nothing, and a health check reading "serving" took it for a healthy one.
        String linkState = link == null ? "registered" : link.getString("state");
        JsonObject body = new JsonObject().put("worker_id", s.getWorkerId()).put("engine", s.getEngine())
                .put("state", !s.getFailure().isEmpty() ? "failed" : s.getDraining() ? "draining"
                        : "registered".equals(linkState) ? "serving" : linkState);
        if (!s.getFailure().isEmpty()) {
            body.put("failure", s.getFailure());
        }
        if (link != null) {
            body.put("gateway", link);
        }
        if (payments.onChain()) {
            OwnerAddresses.putWallet(body, "payout_address", payments.payoutAddress());
        }
        OpenAiResponses.json(ctx.response(), body.put("models", models).put("load", load)
                .put("earnings", earnings.apply(s.getLoad()).totals()).put("channels", payments.status())
                .put("unbilled", payments.unbilled().status()).encode());
    }

    /**
     * @param running the usage so far, put on every chunk, when the client asked for it
     *                ({@code continuous_usage_stats}); null otherwise
     */
    private record SinkTarget(CompletionSink sink, Usage.Builder running) implements EventTarget {
        @Override
        public void accepted(int promptTokens) {
            if (running != null) {
                running.setPromptTokens(promptTokens);
            }
        }

        @Override
        public void delta(Delta delta) {
            if (running == null) {
                sink.delta(delta);
            } else {
                running.setCompletionTokens((int) (running.getCompletionTokens() + CompletionSink.tokens(delta)));
                sink.delta(delta, running.build());
            }
        }

        @Override
        public void finish(Final fin) {
            sink.finish(fin, null);  // a worker has no prices: usage without cost
        }

        @Override
        public boolean writeQueueFull() {
            return sink.writeQueueFull();
        }

        @Override
        public void drainHandler(Handler<Void> handler) {
            sink.drainHandler(handler);
        }
    }
}
