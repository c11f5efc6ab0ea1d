package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ADMIN_KEY;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.forward.ForwarderOptions;
import org.cocoonjvm.worker.forward.OpenAiForwarder;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Workers that forward to an OpenAI-compatible server beside them, here a real HTTP server on
 * loopback streaming the way vLLM does: what the gateway bills when such a stream is cut short,
 * when it ends with the server's own usage, and how the server's failures reach the circuit breaker.
 */
class ForwardedStreamsTest {
    private static final String MODEL = "big-model";
    private static final int PROMPT_TOKENS = 12;

    private TestNetwork net;
    private final Vertx upstreamVertx = Vertx.vertx();
    private final Upstream upstream = new Upstream();

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
        await(upstreamVertx.close());
    }

    private WorkerNode forwardingWorker(boolean runningUsage, long connectTimeoutMs) {
        return forwardingWorker(runningUsage, connectTimeoutMs, WorkerPaymentOptions.IN_MEMORY);
    }

    /** @param payments the worker's credit window and payment timeout */
    private WorkerNode forwardingWorker(boolean runningUsage, long connectTimeoutMs, WorkerPaymentOptions payments) {
        URI uri = URI.create("http://127.0.0.1:" + upstream.start(upstreamVertx));
        return net.addWorker((v, credit) -> new OpenAiForwarder(v, new ForwarderOptions(uri, "upstream-model", null,
                new ModelInfo(MODEL, "abc123", 32768), 8, connectTimeoutMs, 60_000, runningUsage), credit), payments);
    }

    /**
     * A gateway paying a state per token, and a forwarding worker that earns one nanoTON a token
     * (TestNetwork's prices) with a credit window of 40 nanoTON.
     */
    private WorkerNode paidForwardingWorker(long paymentTimeoutMs) {
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, 10_000_000_000L));
        return forwardingWorker(true, 2_000, new WorkerPaymentOptions(null, "", 40, paymentTimeoutMs));
    }

    private JsonObject channel(WorkerNode worker) {
        JsonArray channels = net.workerStatus(worker).getJsonArray("channels");
        assertThat(channels).hasSize(1);
        return channels.getJsonObject(0);
    }

    /** The usage chunk of a finished stream: the last event with a usage. */
    private static JsonObject usage(List<SseEvents.Event> events) {
        return events.stream().filter(e -> e.data().contains("\"usage\""))
                .map(e -> new JsonObject(e.data()).getJsonObject("usage")).reduce((a, b) -> b).orElseThrow();
    }

    /** What the test account pays for these tokens (TestNetwork's prices). */
    private static long cost(long prompt, long completion) {
        return Pricing.cost(PriceSchedule.of(MODEL, 2, 1), new TokenCounts(prompt, 0, completion, 0)).clientCost();
    }

    private JsonObject adminWorker() {
        TestNetwork.Reply r = net.call(HttpMethod.GET, "/admin/workers", ADMIN_KEY, null);
        return r.json().getJsonArray("workers").getJsonObject(0);
    }

    private long spentOnceSettled() {
        TestNetwork.eventually("the request is settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        return net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton();
    }

    /** What a stream cut short was billed, and the tokens the gateway and the worker both counted for it. */
    private record Cut(long spent, long served) {}

    /** A long stream whose client leaves after ten chunks, once it is settled. */
    private Cut disconnectAfterTenChunks(WorkerNode worker) throws Exception {
        upstream.tokens = 1_000;
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat(MODEL, true, ""));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("ten chunks arrived", () -> sse.size() >= 10);

        response.request().connection().close();

        TestNetwork.eventually("the upstream stream was cut", () -> upstream.open.get() == 0);
        long spent = spentOnceSettled();
        long served = adminWorker().getLong("tokens_served");
        assertThat(served).isBetween(10L, (long) upstream.sent.get());
        // The worker may have forwarded one more chunk that was on the wire when the gateway cancelled.
        assertThat(net.workerStatus(worker).getJsonObject("load").getLong("tokens_generated")).isBetween(served, served + 1);
        return new Cut(spent, served);
    }

    @Test
    void clientDisconnect_billsThePromptAndTheTokensForwarded() throws Exception {
        net = new TestNetwork();
        Cut cut = disconnectAfterTenChunks(forwardingWorker(true, 2_000));
        assertThat(cut.spent()).isEqualTo(cost(PROMPT_TOKENS, cut.served()));
    }

    @Test
    void upstreamStallingMidStream_endsAtTheDeadlineWithTheUsageSoFar_billed() throws Exception {
        net = new TestNetwork(KeyLimits.UNLIMITED, new RelayOptions(100, 5_000, 1_500, 3, 64 * 1024), TestNetwork.START_BALANCE);
        forwardingWorker(true, 2_000);
        upstream.tokens = 1_000;
        upstream.stallAfter = 15;

        List<SseEvents.Event> events = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat(MODEL, true, ""))).ended.get(10, TimeUnit.SECONDS);

        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(new JsonObject(events.get(events.size() - 2).data()).getJsonObject("error").getString("code"))
                .isEqualTo("timeout");
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");  // in the error event
        assertThat(usage.getInteger("prompt_tokens")).isEqualTo(PROMPT_TOKENS);
        assertThat(usage.getInteger("completion_tokens")).isEqualTo(15);
        assertThat(usage.getLong("total_cost")).isEqualTo(cost(PROMPT_TOKENS, 15));
        assertThat(spentOnceSettled()).isEqualTo(usage.getLong("total_cost"));
        assertThat(adminWorker().getLong("tokens_served")).isEqualTo(15);
    }

    @Test
    void withoutRunningUsage_eachChunkWithTextCountsAsOneToken() throws Exception {
        net = new TestNetwork();
        Cut cut = disconnectAfterTenChunks(forwardingWorker(false, 2_000));
        assertThat(upstream.askedForRunningUsage).isFalse();
        assertThat(upstream.askedForTimings).isFalse();
        // The prompt's size comes only with the final usage, which a stream cut short never gets.
        assertThat(cut.spent()).isEqualTo(cost(0, cut.served()));
    }

    @Test
    void llamaCppsTimings_billAStreamCutShort_promptCacheIncluded() throws Exception {
        net = new TestNetwork();
        upstream.llamaCpp = true;
        upstream.cachedPrompt = 5;  // llama.cpp's prompt_n leaves out what its prompt cache held
        Cut cut = disconnectAfterTenChunks(forwardingWorker(true, 2_000));
        assertThat(upstream.askedForTimings).isTrue();
        assertThat(cut.spent()).isEqualTo(cost(PROMPT_TOKENS, cut.served()));
    }

    @Test
    void theUpstreamsFinalUsage_isWhatIsBilled_once() throws Exception {
        net = new TestNetwork();
        WorkerNode worker = forwardingWorker(false, 2_000);
        upstream.tokens = 60;
        upstream.tokensPerChunk = 3;  // as with speculative decoding: more tokens than chunks

        List<SseEvents.Event> events = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat(MODEL, true, ""))).ended.get(10, TimeUnit.SECONDS);

        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(events).noneMatch(e -> e.data().contains("\"error\""));
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");
        assertThat(usage.getInteger("prompt_tokens")).isEqualTo(PROMPT_TOKENS);
        assertThat(usage.getInteger("completion_tokens")).isEqualTo(60);
        assertThat(usage.getLong("total_cost")).isEqualTo(cost(PROMPT_TOKENS, 60));
        assertThat(spentOnceSettled()).isEqualTo(usage.getLong("total_cost"));
        assertThat(adminWorker().getLong("tokens_served")).isEqualTo(60);
        assertThat(net.workerStatus(worker).getJsonObject("load").getLong("tokens_generated")).isEqualTo(60);
    }

    @Test
    void upstreamFailing_opensTheCircuitBreaker_andIsAnUpstreamError() {
        net = new TestNetwork();
        forwardingWorker(true, 2_000);
        upstream.status = 500;

        for (int i = 0; i < 3; i++) {
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat(MODEL, false, ""));
            assertThat(reply.status()).isEqualTo(502);
            assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("upstream_error");
            // Nothing billed: the SDK's own retry (its default for a 5xx) may meet a healthy worker.
            assertThat(reply.response().getHeader("x-should-retry")).isNull();
        }

        JsonObject admin = adminWorker();
        assertThat(admin.getLong("failures")).isEqualTo(3);
        assertThat(admin.getBoolean("circuit_open")).isTrue();
        assertThat(spentOnceSettled()).isZero();

        // Its only worker's breaker is open: the client is told why, and to come back when it half-opens (10 s).
        TestNetwork.Reply open = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat(MODEL, false, ""));
        assertThat(open.status()).isEqualTo(503);
        assertThat(open.json().getJsonObject("error").getString("code")).isEqualTo("no_capacity");
        assertThat(open.json().getJsonObject("error").getString("message")).contains("failing", "circuit breaker");
        assertThat(Integer.parseInt(open.response().getHeader("Retry-After"))).isBetween(5, 10);
        assertThat(open.response().getHeader("x-should-retry")).isEqualTo("true");
    }

    @Test
    void upstreamThatNeverAnswers_isAWorkerFailure() {
        net = new TestNetwork();
        forwardingWorker(true, 300);
        upstream.status = 0;

        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat(MODEL, false, ""));

        assertThat(reply.status()).isEqualTo(502);
        assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("upstream_error");
        assertThat(adminWorker().getLong("failures")).isEqualTo(1);
    }

    @Test
    void upstreamBusy_isNotAFailure() {
        net = new TestNetwork();
        forwardingWorker(true, 2_000);

        for (int status : new int[] {503, 429, 503, 429}) {
            upstream.status = status;
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat(MODEL, false, ""));
            assertThat(reply.status()).isEqualTo(503);
            assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("no_capacity");
        }

        JsonObject admin = adminWorker();
        assertThat(admin.getLong("failures")).isZero();
        assertThat(admin.getBoolean("circuit_open")).isFalse();
    }

    @Test
    void aGatewayThatStopsPaying_isHeldAtTheCreditWindow_thenFailedWithPaymentOverdue_andTheUpstreamCut() throws Exception {
        WorkerNode worker = paidForwardingWorker(1_000);
        net.gateway.payments().paying(false);
        upstream.tokens = 200;
        long startNanos = System.nanoTime();

        List<SseEvents.Event> events = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat(MODEL, true, ""))).ended.get(10, TimeUnit.SECONDS);
        long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);

        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(events.get(events.size() - 2).data()).contains("\"error\"").contains("payment_overdue")
                .contains("credit window of 40 nanoTON");
        assertThat(tookMs).isGreaterThanOrEqualTo(1_000);
        // Held once the 12-token prompt and 29 tokens are owed, or a few more when a late event loop
        // read several chunks at once; the upstream had 200 to send.
        long served = usage(events).getLong("completion_tokens");
        assertThat(served).isBetween(29L, 45L);
        TestNetwork.eventually("the upstream request was reset", () -> upstream.open.get() == 0);
        assertThat(upstream.sent.get()).isLessThan(200);
        JsonObject channel = channel(worker);
        assertThat(channel.getLong("unpaid_nanoton")).isEqualTo(PROMPT_TOKENS + served);
        assertThat(channel.getLong("seqno")).isZero();
    }

    @Test
    void aHeldStream_resumesWhenThePaymentArrives_andEndsWhole() throws Exception {
        WorkerNode worker = paidForwardingWorker(20_000);
        net.gateway.payments().paying(false);
        upstream.tokens = 100;
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat(MODEL, true, "")));

        TestNetwork.eventually("the worker holds the stream", () -> channel(worker).getLong("unpaid_nanoton") > 40);
        Thread.sleep(300);  // deltas already on their way to the gateway, late on a loaded machine
        int held = sse.size();
        Thread.sleep(300);
        assertThat(sse.size()).isEqualTo(held);
        assertThat(sse.ended).isNotDone();

        net.gateway.payments().paying(true);
        List<SseEvents.Event> events = sse.ended.get(10, TimeUnit.SECONDS);
        assertThat(events).noneMatch(e -> e.data().contains("\"error\""));
        assertThat(usage(events).getLong("completion_tokens")).isEqualTo(100);
        TestNetwork.eventually("the worker is paid in full", () -> channel(worker).getLong("sent_nanoton") == PROMPT_TOKENS + 100);
        assertThat(channel(worker).getLong("unpaid_nanoton")).isZero();
    }

    /**
     * Clients that leave at once, about when the upstream's first chunks arrive: the worker's
     * Final goes out as the upstream is cut, and whatever the upstream had already sent after it
     * is neither metered nor paid, so the books still agree.
     */
    @Test
    void clientsLeavingAtOnce_leaveTheWorkerAndTheGatewayAgreeing() throws Exception {
        WorkerNode worker = paidForwardingWorker(1_000);
        upstream.tokens = 1_000;
        for (int i = 0; i < 6; i++) {
            HttpClientRequest request = net.unanswered(TestNetwork.post("/v1/chat/completions", API_KEY), chat(MODEL, true, ""));
            Thread.sleep(5 + 5 * i);
            request.connection().close();
        }
        TestNetwork.eventually("the upstream streams were cut", () -> upstream.open.get() == 0);
        TestNetwork.eventually("the books agree", () -> channel(worker).getLong("unpaid_nanoton") == 0
                && adminWorker().getJsonObject("billing").getLong("unpaid_nanoton") == 0
                && channel(worker).getLong("sent_nanoton") == adminWorker().getJsonObject("billing").getLong("owed_nanoton"));
        assertThat(spentOnceSettled()).isEqualTo(2 * channel(worker).getLong("sent_nanoton"));
    }

    @Test
    void aPayingGateway_streamsWhole_andTheWorkerMetersExactlyWhatItIsPaid() throws Exception {
        WorkerNode worker = paidForwardingWorker(1_000);
        upstream.tokens = 100;

        List<SseEvents.Event> events = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat(MODEL, true, ""))).ended.get(10, TimeUnit.SECONDS);

        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(events).noneMatch(e -> e.data().contains("\"error\""));
        assertThat(usage(events).getLong("completion_tokens")).isEqualTo(100);
        TestNetwork.eventually("the worker is paid in full", () -> channel(worker).getLong("sent_nanoton") == PROMPT_TOKENS + 100);
        assertThat(channel(worker).getLong("unpaid_nanoton")).isZero();
    }

    /**
     * A vLLM-like chat completions server: a role chunk, one chunk per {@code tokensPerChunk}
     * tokens every 20 ms, the finish chunk, then the usage chunk and {@code [DONE]}; with usage on
     * every chunk when asked for {@code continuous_usage_stats}, as vLLM does. Or, with
     * {@code llamaCpp}, llama.cpp's server: {@code timings} on each chunk after the role's when
     * asked for {@code timings_per_token}, its prompt count less what the prompt cache held.
     */
    private static final class Upstream {
        volatile int status = 200;
        volatile int tokens;
        volatile int tokensPerChunk = 1;
        /** Chunks after which it sends nothing more, keeping the stream open; -1: never. */
        volatile int stallAfter = -1;
        volatile boolean llamaCpp;
        volatile int cachedPrompt;
        volatile boolean askedForRunningUsage;
        volatile boolean askedForTimings;
        final AtomicInteger sent = new AtomicInteger();
        final AtomicInteger open = new AtomicInteger();

        int start(Vertx vertx) {
            HttpServer server = vertx.createHttpServer().requestHandler(request -> request.body().onSuccess(body -> {
                if (request.method() == HttpMethod.GET) {  // the forwarder's check at start: a list, as a real server's
                    request.response().end(new JsonObject().put("data", new JsonArray()
                            .add(new JsonObject().put("id", "upstream-model"))).encode());
                    return;
                }
                JsonObject json = body.toJsonObject();
                askedForRunningUsage = json.getJsonObject("stream_options", new JsonObject()).getBoolean("continuous_usage_stats", false);
                askedForTimings = json.getBoolean("timings_per_token", false);
                answer(vertx, request, llamaCpp ? askedForTimings : askedForRunningUsage);
            }));
            return await(server.listen(0, "127.0.0.1")).actualPort();
        }

        private void answer(Vertx vertx, HttpServerRequest request, boolean runningUsage) {
            HttpServerResponse response = request.response();
            if (status == 0) {
                return;  // never answers
            }
            if (status != 200) {
                response.setStatusCode(status).end(new JsonObject().put("error", new JsonObject().put("message", "no")).encode());
                return;
            }
            open.incrementAndGet();
            response.closeHandler(v -> {
                if (!response.ended()) {
                    open.decrementAndGet();
                }
            });
            response.setChunked(true).putHeader("Content-Type", "text/event-stream");
            chunk(response, new JsonObject().put("role", "assistant").put("content", ""), null, runningUsage && !llamaCpp ? 0 : -1);
            int chunks = (tokens + tokensPerChunk - 1) / tokensPerChunk;
            AtomicInteger written = new AtomicInteger();
            vertx.setPeriodic(20, timer -> {
                int n = written.get();
                if (response.closed() || n == stallAfter) {
                    vertx.cancelTimer(timer);
                    return;
                }
                int done = Math.min(tokens, (n + 1) * tokensPerChunk);
                chunk(response, new JsonObject().put("content", "t" + n + " "), null, runningUsage ? done : -1);
                sent.incrementAndGet();
                if (written.incrementAndGet() == chunks) {
                    vertx.cancelTimer(timer);
                    chunk(response, new JsonObject(), "length", runningUsage ? tokens : -1);
                    response.write("data: " + new JsonObject().put("choices", new JsonArray()).put("usage", usage(tokens)) + "\n\n");
                    response.end("data: [DONE]\n\n");
                    open.decrementAndGet();
                }
            });
        }

        /** A chunk with the running counts for {@code completed} tokens, or none for -1. */
        private void chunk(HttpServerResponse response, JsonObject delta, String finish, int completed) {
            JsonObject chunk = new JsonObject().put("object", "chat.completion.chunk")
                    .put("choices", new JsonArray().add(new JsonObject().put("index", 0).put("delta", delta).put("finish_reason", finish)));
            if (completed >= 0 && llamaCpp) {
                chunk.put("timings", new JsonObject().put("cache_n", cachedPrompt).put("prompt_n", PROMPT_TOKENS - cachedPrompt)
                        .put("predicted_n", completed).put("predicted_ms", 20.0 * completed));
            } else if (completed >= 0) {
                chunk.put("usage", usage(completed));
            }
            response.write("data: " + chunk.encode() + "\n\n");
        }

        private static JsonObject usage(int completion) {
            return new JsonObject().put("prompt_tokens", PROMPT_TOKENS).put("completion_tokens", completion)
                    .put("total_tokens", PROMPT_TOKENS + completion);
        }
    }
}
