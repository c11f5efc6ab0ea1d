package org.cocoonjvm.worker.forward;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.SamplingParams;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.openai.SseParser;
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
 * {@code Call.maxCompletion}).
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
    private static final int MAX_EVENT_BYTES = 1 << 20;

    private final Vertx vertx;
    private final ForwarderOptions options;
    private final CreditGate credit;
    private final HttpClient client;
    /** Calls whose upstream is held for want of payment: each payment has them look again. */
    private final Set<Call> waitingForPayment = ConcurrentHashMap.newKeySet();
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicLong tokensGenerated = new AtomicLong();
    private final AtomicLong promptTokens = new AtomicLong();
    private final CompletableFuture<Void> drained = new CompletableFuture<>();
    private volatile boolean accepting = true;
    /** The stop's grace ran out: the forwards its closing client breaks fail as the worker's stop, not as faults. */
    private volatile boolean graceOver;

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
        Call call = new Call(request.getRequestId(), output, meter,
                request.getMaxTokens() > 0 ? Integer.MAX_VALUE : model.announcedContext());
        // Vert.x's own idle timeout would also fire while the stream is held for payment: Call times the stream.
        RequestOptions http = upstreamRequest(HttpMethod.POST, request.hasChat() ? "/v1/chat/completions" : "/v1/completions")
                .putHeader("Content-Type", "application/json").putHeader("Accept", "text/event-stream")
                .setTimeout(0).setIdleTimeout(0);
        // Wait (on this worker-pool thread) for the upstream's status, so that a refusal becomes a
        // GenerationException the gateway can act on before any token was sent.
        Future<HttpClientResponse> answered = client.request(http).compose(r -> {
            call.request = r;
            call.context = Vertx.currentContext();
            // Paused until stream() has its handlers in place: events would be lost otherwise.
            return r.send(body(request).encode()).map(HttpClientResponse::pause);
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
            GenerationException refused = refusal(response.statusCode());
            if (refused.reason() != GenerationException.Reason.INVALID_ARGUMENT) {
                logFailure(request.getRequestId(), "HTTP " + response.statusCode());
            }
            throw refused;
        }
        call.context.runOnContext(v -> call.stream(response));
        return call::stop;
    }

    /** The upstream request: the client's, with streaming and usage forced on. */
    private JsonObject body(GenerateRequest request) {
        JsonObject streamOptions = new JsonObject().put("include_usage", true);
        JsonObject body = new JsonObject().put("model", options.upstreamModel()).put("stream", true)
                .put("stream_options", streamOptions);
        if (options.runningUsage()) {
            streamOptions.put("continuous_usage_stats", true);
            body.put("timings_per_token", true);
        }
        if (request.hasChat()) {
            JsonArray messages = new JsonArray();
            for (ChatMessage m : request.getChat().getMessagesList()) {
                messages.add(new JsonObject().put("role", m.getRole()).put("content", m.getContent()));
            }
            body.put("messages", messages);
        } else {
            body.put("prompt", request.getPrompt());
        }
        if (request.getMaxTokens() > 0) {
            body.put("max_tokens", request.getMaxTokens());
        }
        SamplingParams s = request.getSampling();
        body.put("temperature", s.getTemperature());
        if (s.getTopP() > 0 && s.getTopP() < 1) {
            body.put("top_p", s.getTopP());
        }
        if (s.getTopK() > 0) {
            body.put("top_k", s.getTopK());  // not OpenAI's, but vLLM, SGLang and llama.cpp take it
        }
        if (s.hasSeed()) {
            body.put("seed", s.getSeed());
        }
        if (s.getPresencePenalty() != 0) {
            body.put("presence_penalty", s.getPresencePenalty());
        }
        if (s.getFrequencyPenalty() != 0) {
            body.put("frequency_penalty", s.getFrequencyPenalty());
        }
        if (request.getStopCount() > 0) {
            body.put("stop", new JsonArray(request.getStopList()));
        }
        return body;
    }

    /**
     * The one table from the upstream's refusal to the worker's: the request's fault fails it
     * everywhere; "busy" sends it elsewhere without blame; anything else (a 5xx, a 401 for a wrong
     * key) means this worker cannot serve, which the gateway's circuit breaker counts.
     */
    private static GenerationException refusal(int status) {
        return switch (status) {
            case 400, 413, 422 -> new GenerationException(GenerationException.Reason.INVALID_ARGUMENT,
                    "The upstream server rejected the request (HTTP " + status + ").");
            case 404 -> new GenerationException(GenerationException.Reason.MODEL_NOT_FOUND,
                    "The upstream server does not serve the configured model (HTTP 404).");
            case 429, 503 -> new GenerationException(GenerationException.Reason.OVERLOADED,
                    "The upstream server is busy (HTTP " + status + ").");
            default -> new GenerationException(GenerationException.Reason.UPSTREAM_FAILED,
                    "The upstream server failed the request (HTTP " + status + ").");
        };
    }

    /** {@code why} names a status or a reason, never the request's text nor the upstream's. */
    private void logFailure(String requestId, String why) {
        log.warn("Request {}: the upstream server at {} failed it: {}.", requestId, options.upstream(), why);
    }

    private void finished() {
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

    /** One forwarded generation; its callbacks run on {@link #context}, the upstream request's. */
    private final class Call {
        private final String requestId;
        private final OutputMailbox output;
        private final CreditGate.Meter meter;
        /**
         * The most completion tokens forwarded: the context this worker announces for a request
         * without max_tokens; unbounded for one with them, which the upstream keeps to.
         */
        private final int maxCompletion;
        private volatile HttpClientRequest request;
        /** Reset on purpose (client gone, payment overdue): what the upstream does next is no failure of its own. */
        private volatile boolean cancelled;
        /** Set before the response arrives; everything below is touched on it only. */
        private volatile Context context;
        private HttpClientResponse response;
        /** The upstream is paused until a payment brings the channel under its window. */
        private boolean held;
        private long overdueTimer;
        private long idleTimer;
        /** When the upstream last sent a byte, or the stream was last held: a held stream is not idle. */
        private long lastActiveNanos;
        /** The upstream's latest usage; null until it reports one. */
        private Usage usage;
        /** Completion tokens the deltas carried so far. */
        private int forwarded;
        private boolean deltaSent;
        private boolean announced;
        private FinishReason reason = FinishReason.FINISH_REASON_UNSPECIFIED;
        private boolean ended;

        Call(String requestId, OutputMailbox output, CreditGate.Meter meter, int maxCompletion) {
            this.requestId = requestId;
            this.output = output;
            this.meter = meter;
            this.maxCompletion = maxCompletion;
        }

        void stream(HttpClientResponse response) {
            this.response = response;
            SseParser parser = new SseParser(MAX_EVENT_BYTES, this::onEvent);
            lastActiveNanos = System.nanoTime();
            idleTimer = vertx.setTimer(options.idleTimeoutMs(), t -> checkIdle());
            response.handler(buffer -> {
                if (ended) {
                    return;  // what the upstream sent after the Final: the Final's usage is the bill
                }
                lastActiveNanos = System.nanoTime();
                try {
                    parser.handle(buffer);
                } catch (RuntimeException e) {
                    // The parser's message may quote the event, and so the completion: the log gets none of it.
                    upstreamFailed("bad stream from the upstream server: " + e.getMessage(), "an unreadable event");
                    cancel();
                }
                holdIfOverdrawn();
            });
            response.exceptionHandler(e -> upstreamFailed("the upstream stream broke: " + e.getMessage()));
            response.endHandler(v -> {
                if (reason == FinishReason.FINISH_REASON_UNSPECIFIED) {
                    upstreamFailed("the upstream stream ended without a finish_reason");
                } else {
                    end(reason, null);
                }
            });
            // A channel already over its window (other requests' tokens) reads nothing until paid.
            holdIfOverdrawn();
            if (!held) {
                response.resume();
            }
        }

        /**
         * Stops reading the upstream while the channel owes more than the window, so it generates
         * no further than what is buffered; past the gate's limit the request fails, as a paused
         * sequence does in the scheduler.
         */
        private void holdIfOverdrawn() {
            if (held || ended || !meter.paused()) {
                return;
            }
            held = true;
            response.pause();
            waitingForPayment.add(this);
            overdueTimer = vertx.setTimer(Math.max(1, TimeUnit.NANOSECONDS.toMillis(credit.pauseLimitNanos())), t -> {
                end(FinishReason.FINISH_REASON_ERROR, meter.overdue());
                cancel();
            });
        }

        /**
         * Fails the stream once the upstream has sent nothing for the idle timeout; timed one
         * timer at a time, from the last byte, rather than a timer per chunk.
         */
        private void checkIdle() {
            if (ended) {
                return;
            }
            long now = System.nanoTime();
            if (held) {
                lastActiveNanos = now;
            }
            long idleMs = TimeUnit.NANOSECONDS.toMillis(now - lastActiveNanos);
            if (idleMs < options.idleTimeoutMs()) {
                idleTimer = vertx.setTimer(options.idleTimeoutMs() - idleMs, t -> checkIdle());
                return;
            }
            upstreamFailed("the upstream server sent nothing for " + idleMs / 1000.0 + " s");
            cancel();
        }

        /** After a payment: reads on if it brought the channel under its window. */
        void resumeIfPaid() {
            if (held && !meter.paused()) {
                release();
                response.resume();
            }
        }

        private void release() {
            held = false;
            waitingForPayment.remove(this);
            vertx.cancelTimer(overdueTimer);
        }

        private void onEvent(String data) {
            if (ended || data.equals("[DONE]")) {
                return;  // ended: the events after it in the same read are the upstream's, not the client's
            }
            JsonObject chunk = new JsonObject(data);
            if (chunk.containsKey("error")) {
                // Its message may quote the prompt; its type and code may not.
                JsonObject error = chunk.getValue("error") instanceof JsonObject e ? e : new JsonObject();
                upstreamFailed("the upstream server failed: " + chunk.getValue("error"), "an error event (type "
                        + error.getValue("type") + ", code " + error.getValue("code") + ")");
                return;
            }
            Usage counted = counts(chunk);
            if (counted != null) {
                // Its latest size replaces the earlier one here too; a failure that bills nobody for
                // the prompt (end) leaves it counted, since the upstream did process it.
                promptTokens.addAndGet(counted.getPromptTokens() - (usage == null ? 0 : usage.getPromptTokens()));
                usage = counted;
                meter.prompt(usage.getPromptTokens());  // the size last reported replaces the one before
                if (!announced && !deltaSent) {
                    announced = true;
                    output.accepted(usage.getPromptTokens());
                }
            }
            JsonArray choices = chunk.getJsonArray("choices");
            JsonObject choice = choices == null || choices.isEmpty() ? null : choices.getJsonObject(0);
            String text = text(choice);
            int advanced = counted != null ? Math.max(0, usage.getCompletionTokens() - forwarded) : text.isEmpty() ? 0 : 1;
            int room = maxCompletion - forwarded;
            if (advanced > room || room == 0 && !text.isEmpty()) {
                // The gateway holds and bounds a request without max_tokens by the context its
                // workers announce, and cuts off one that streams past it mid-reply, unpaid for
                // the rest (review Y, Y-4); an upstream serving a longer context than the model
                // file's (rope scaling) would. The forward ends at "length" there instead, and the
                // upstream's generation is reset. Not sent as the upstream's max_tokens: vLLM and
                // SGLang refuse a prompt plus max_tokens past their own context (a --max-model-len
                // often below the model file's), and only the upstream counts the prompt's tokens.
                if (room > 0) {
                    forward(room, text);
                }
                end(FinishReason.FINISH_REASON_LENGTH, null);
                cancel();
                return;
            }
            if (advanced > 0 || !text.isEmpty()) {
                forward(advanced, text);
            }
            String finish = choice == null ? null : choice.getString("finish_reason");
            if (finish != null) {
                reason = finish.equals("length") ? FinishReason.FINISH_REASON_LENGTH : FinishReason.FINISH_REASON_STOP;
            }
        }

        private void forward(int tokens, String text) {
            forwarded += tokens;
            tokensGenerated.addAndGet(tokens);
            meter.completion(tokens);
            deltaSent = true;
            output.tokens(tokens, text);
        }

        /**
         * The counts a chunk reports: its {@code usage} (OpenAI's, and vLLM's running usage), else
         * llama.cpp's {@code timings}, whose prompt count leaves out what its prompt cache held;
         * null for neither, or for timings without a prompt count yet (llama.cpp's -1).
         */
        private static Usage counts(JsonObject chunk) {
            JsonObject u = chunk.getJsonObject("usage");
            if (u != null) {
                JsonObject details = u.getJsonObject("prompt_tokens_details");
                return Usage.newBuilder().setPromptTokens(u.getInteger("prompt_tokens", 0))
                        .setCompletionTokens(u.getInteger("completion_tokens", 0))
                        .setCachedTokens(details == null ? 0 : details.getInteger("cached_tokens", 0)).build();
            }
            JsonObject t = chunk.getJsonObject("timings");
            if (t == null || t.getInteger("prompt_n", -1) < 0 || t.getInteger("predicted_n", -1) < 0) {
                return null;
            }
            int cached = Math.max(0, t.getInteger("cache_n", 0));
            return Usage.newBuilder().setPromptTokens(cached + t.getInteger("prompt_n"))
                    .setCompletionTokens(t.getInteger("predicted_n")).setCachedTokens(cached).build();
        }

        /** A chat chunk's content or a completion chunk's text; empty for none. */
        private static String text(JsonObject choice) {
            if (choice == null) {
                return "";
            }
            JsonObject delta = choice.getJsonObject("delta");
            String text = delta != null ? delta.getString("content") : choice.getString("text");
            return text == null ? "" : text;
        }

        private void upstreamFailed(String error) {
            upstreamFailed(error, error);
        }

        /** @param logged what the log says: {@code error} less anything that may quote the request or its completion */
        private void upstreamFailed(String error, String logged) {
            if (!ended && !cancelled) {
                logFailure(requestId, logged);
            }
            // A reset of ours breaks the stream too: then the caller stopped it, and nothing failed.
            end(cancelled ? FinishReason.FINISH_REASON_CANCELLED : FinishReason.FINISH_REASON_ERROR, error);
        }

        private void end(FinishReason finish, String error) {
            if (ended) {
                return;
            }
            ended = true;
            vertx.cancelTimer(idleTimer);
            if (held) {
                release();
            }
            if (finish == FinishReason.FINISH_REASON_ERROR && forwarded == 0 && usage != null) {
                // As a native sequence: a failure before any output costs nobody its prompt.
                meter.prompt(0);
                usage = Usage.getDefaultInstance();
            }
            meter.ended();
            // The completion count is what was metered: a chunk without usage counted as a token may
            // leave the upstream's last report below it.
            Final.Builder fin = Final.newBuilder().setFinishReason(finish)
                    .setUsage((usage != null ? usage.toBuilder() : Usage.newBuilder()).setCompletionTokens(forwarded));
            if (finish == FinishReason.FINISH_REASON_ERROR) {
                fin.setError(graceOver ? STOPPED_BEFORE_THE_END : error).setWorkerStopping(graceOver);
            }
            output.finish(fin.build(), meter);
            finished();
        }

        /** The caller stopped the generation: the upstream is reset, and the Final says what was metered until then. */
        void stop() {
            cancel();
            context.runOnContext(v -> end(FinishReason.FINISH_REASON_CANCELLED, null));
        }

        void cancel() {
            cancelled = true;
            HttpClientRequest r = request;
            if (r != null) {
                r.reset();
            }
        }
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
