package org.cocoonjvm.worker.forward;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.GenerationException;
import org.cocoonjvm.worker.scheduler.Generator;
import org.cocoonjvm.worker.scheduler.OutputMailbox;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves requests by forwarding them to an OpenAI-compatible server on the same host (vLLM,
 * SGLang, llama.cpp's server): how models too large for the built-in engine run inside a
 * confidential VM. The worker still owns registration, status and usage; the upstream only
 * generates. Streaming is always used upstream, with usage forced on, so tokens flow through as
 * they come and the final usage is the upstream's own count.
 *
 * <p>A stream cut short has no final usage, and the gateway then bills the prompt size from
 * {@code Accepted} and the tokens its deltas carried, so both must be known as the stream goes.
 * With {@link ForwarderOptions#runningUsage()} the upstream is asked for its counts on every
 * chunk, in both dialects that exist: vLLM's and SGLang's {@code continuous_usage_stats} (a
 * {@code usage} object) and llama.cpp's {@code timings_per_token} (a {@code timings} object, whose
 * prompt is {@code cache_n + prompt_n}); each server ignores the other's field. {@code Accepted}
 * goes out with the first prompt size reported, if that comes before any text, and each delta
 * carries the tokens the completion count advanced by. A chunk without counts is one token when it
 * has text (what vLLM streams without speculative decoding). The upstream's last {@code usage},
 * when its stream ends with one, is the final usage; without any, the final usage is the tokens
 * counted and the last prompt size reported, 0 if none was. A request without {@code max_tokens}
 * ends at {@code length} once its completion reaches the context the worker announces (see
 * {@code ForwardedCall.maxCompletion}).
 *
 * <p>The worker's {@link CreditGate} meters those same counts on the request's channel, as the
 * scheduler does for the built-in engines. While the channel owes more than the credit window the
 * upstream's response is paused: the worker stops reading it, and HTTP flow control holds the
 * upstream. A payment that brings the channel back under the window resumes it; a request held
 * past the gate's limit ends with the gate's {@code payment_overdue} error, and its upstream
 * request is reset.
 *
 * <p>A stream under way that gets no byte from the upstream for {@link ForwarderOptions#idleTimeoutMs()}
 * (time held for payment aside) fails as the upstream's fault, billed as far as it got, and its
 * upstream request is reset. Every failure of the upstream is logged once, at WARN, with its status
 * or reason and never a request's text; the request's own faults (400, 413, 422) only go back to the client.
 */
public final class OpenAiForwarder implements Generator {
    private static final Logger log = LoggerFactory.getLogger(OpenAiForwarder.class);

    // Package-private: each ForwardedCall counts, logs and waits for payment through its forwarder's.
    final Vertx vertx;
    final ForwarderOptions options;
    final CreditGate credit;
    private final HttpClient client;
    /** Calls whose upstream is held for want of payment: each payment has them look again. */
    final Set<ForwardedCall> waitingForPayment = ConcurrentHashMap.newKeySet();
    private final AtomicInteger running = new AtomicInteger();
    final AtomicLong tokensGenerated = new AtomicLong();
    final AtomicLong promptTokens = new AtomicLong();
    private final CompletableFuture<Void> drained = new CompletableFuture<>();
    private volatile boolean accepting = true;
    /** The stop's grace ran out: the forwards its closing client breaks fail as the worker's stop, not as faults. */
    volatile boolean graceOver;

    /**
     * @param credit meters each request on its channel and holds the streams of a channel the
     *               gateway is behind on; pass the {@code WorkerPayments} the worker node is given,
     *               or its credit window does nothing
     */
    public OpenAiForwarder(Vertx vertx, ForwarderOptions options, CreditGate credit) {
        this.vertx = vertx;
        this.options = options;
        this.credit = credit;
        int port = options.upstream().getPort() > 0 ? options.upstream().getPort() : 80;
        this.client = vertx.createHttpClient(new HttpClientOptions().setDefaultHost(options.upstream().getHost())
                .setDefaultPort(port).setConnectTimeout((int) options.connectTimeoutMs()));
        credit.onPayment(() -> waitingForPayment.forEach(call -> call.context.runOnContext(v -> call.resumeIfPaid())));
    }

    @Override
    public ModelInfo model() {
        return options.identity();
    }

    @Override
    public String engineKind() {
        return "forward";
    }

    @Override
    public int capacity() {
        return options.maxConcurrent();
    }

    @Override
    public WorkerLoad load() {
        return WorkerLoad.newBuilder().setRunning(running.get()).setCapacity(options.maxConcurrent())
                .setTokensGenerated(tokensGenerated.get()).setPromptTokens(promptTokens.get()).build();
    }

    /**
     * Asks the upstream once for its models, to warn of a wrong URL, key or model name at start
     * rather than at the first request. Never blocks nor refuses the start: the upstream server
     * often comes up after the worker, and requests reach it whenever it is there.
     */
    @Override
    public OpenAiForwarder start() {
        RequestOptions models = upstreamRequest(HttpMethod.GET, "/v1/models").setTimeout(options.connectTimeoutMs());
        client.request(models).compose(r -> r.send().compose(response -> response.body().map(body -> {
            if (response.statusCode() != 200) {
                log.warn("The upstream server at {} answered GET /v1/models with HTTP {}{}; requests will fail until it serves them.",
                        options.upstream(), response.statusCode(), switch (response.statusCode()) {
                            case 401, 403 -> " (check --forward-api-key)";
                            case 404 -> " (check --forward-url: the server's base URL)";
                            default -> "";
                        });
                return null;
            }
            Set<String> served = new TreeSet<>();
            try {
                JsonArray data = body.toJsonObject().getJsonArray("data");
                for (int i = 0; i < data.size(); i++) {
                    served.add(data.getJsonObject(i).getString("id"));
                }
            } catch (RuntimeException e) {
                log.warn("The upstream server at {} answered GET /v1/models with no OpenAI model list; is it an "
                        + "OpenAI-compatible server?", options.upstream());
                return null;
            }
            if (!served.contains(options.upstreamModel())) {
                log.warn("The upstream server at {} does not serve the model '{}' (--forward-model); it serves {}.",
                        options.upstream(), options.upstreamModel(), served);
            }
            return null;
        }))).onFailure(e -> log.warn("The upstream server at {} did not answer GET /v1/models: {}; the worker starts anyway, "
                + "and requests will fail until the server is up.", options.upstream(), rootMessage(e)));
        return this;
    }

    /** A request to {@code path} on the upstream, with its key if it has one. */
    private RequestOptions upstreamRequest(HttpMethod method, String path) {
        RequestOptions http = new RequestOptions().setMethod(method).setURI(options.upstream().getRawPath() + path);
        if (options.upstreamApiKey() != null) {
            http.putHeader("Authorization", "Bearer " + options.upstreamApiKey());
        }
        return http;
    }

    @Override
    public Runnable submit(GenerateRequest request, OutputMailbox output) {
        ModelInfo model = options.identity();
        if (!accepting) {
            throw new GenerationException(GenerationException.Reason.SHUTTING_DOWN, "The worker is shutting down.");
        }
        if (!request.getModel().equals(model.name()) && !request.getModel().equals(model.id())) {
            throw new GenerationException(GenerationException.Reason.MODEL_NOT_FOUND,
                    "This worker serves '" + model.name() + "', not '" + request.getModel() + "'.");
        }
        // Before anything is sent upstream: a request no channel pays for is refused (payment_required).
        CreditGate.Meter meter = credit.meter(request);
        if (running.incrementAndGet() > options.maxConcurrent()) {
            running.decrementAndGet();
            meter.ended();  // metered nothing: its channel counts it as running no longer
            throw new GenerationException(GenerationException.Reason.OVERLOADED,
                    "The worker is forwarding its maximum of " + options.maxConcurrent() + " requests.");
        }
        ForwardedCall call = new ForwardedCall(this, request.getRequestId(), output, meter,
                request.getMaxTokens() > 0 ? Integer.MAX_VALUE : model.announcedContext());
        // Vert.x's own idle timeout would also fire while the stream is held for payment: the call times the stream.
        RequestOptions http = upstreamRequest(HttpMethod.POST, request.hasChat() ? "/v1/chat/completions" : "/v1/completions")
                .putHeader("Content-Type", "application/json").putHeader("Accept", "text/event-stream")
                .setTimeout(0).setIdleTimeout(0);
        // Wait (on this worker-pool thread) for the upstream's status, so that a refusal becomes a
        // GenerationException the gateway can act on before any token was sent.
        Future<HttpClientResponse> answered = client.request(http).compose(r -> {
            call.request = r;
            call.context = Vertx.currentContext();
            // Paused until stream() has its handlers in place: events would be lost otherwise.
            return r.send(UpstreamJson.body(request, options).encode()).map(HttpClientResponse::pause);
        });
        HttpClientResponse response;
        try {
            response = answered.toCompletionStage().toCompletableFuture().get(options.connectTimeoutMs(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            call.cancel();
            meter.ended();
            finished();
            if (graceOver) {
                throw new GenerationException(GenerationException.Reason.SHUTTING_DOWN, STOPPED_BEFORE_THE_END);
            }
            logFailure(request.getRequestId(), "no answer: " + rootMessage(e));
            throw new GenerationException(GenerationException.Reason.UPSTREAM_FAILED,
                    "The upstream server at " + options.upstream() + " did not answer: " + rootMessage(e));
        }
        if (response.statusCode() != 200) {
            response.exceptionHandler(e -> { });  // the reset below ends it; nothing to report
            call.cancel();
            meter.ended();
            finished();
            GenerationException refused = UpstreamJson.refusal(response.statusCode());
            if (refused.reason() != GenerationException.Reason.INVALID_ARGUMENT) {
                logFailure(request.getRequestId(), "HTTP " + response.statusCode());
            }
            throw refused;
        }
        call.context.runOnContext(v -> call.stream(response));
        return call::stop;
    }

    /** {@code why} names a status or a reason, never the request's text nor the upstream's. */
    void logFailure(String requestId, String why) {
        log.warn("Request {}: the upstream server at {} failed it: {}.", requestId, options.upstream(), why);
    }

    void finished() {
        if (running.decrementAndGet() == 0 && !accepting) {
            drained.complete(null);
        }
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null) {
            e = e.getCause();
        }
        return String.valueOf(e.getMessage());
    }

    @Override
    public CompletableFuture<Void> shutdown(long graceMillis) {
        accepting = false;
        if (running.get() == 0) {
            drained.complete(null);
        }
        return drained.completeOnTimeout(null, graceMillis, TimeUnit.MILLISECONDS)
                .whenComplete((v, e) -> {
                    graceOver = true;
                    client.close();
                });
    }
}
