package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.Future;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import org.cocoonjvm.gateway.limits.KeyLimits;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Per-key limits, balances and service tiers, as clients meet them. */
class LimitsTest {
    private TestNetwork net;

    @AfterEach
    void stop() {
        net.close();
    }

    private static void assertRateLimited(TestNetwork.Reply reply, String messagePart) {
        assertThat(reply.status()).isEqualTo(429);
        assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("rate_limit_exceeded");
        assertThat(reply.json().getJsonObject("error").getString("message")).contains(messagePart);
        assertThat(Integer.parseInt(reply.response().getHeader("Retry-After"))).isPositive();
        assertThat(reply.response().getHeader("x-should-retry")).isEqualTo("true");
    }

    @Test
    void requestsPerMinute() {
        net = new TestNetwork(new KeyLimits(2, 0, 0), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(1000);
        String body = chat("synthetic", false, "\"max_tokens\":2");
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, body).status()).isEqualTo(200);
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, body).status()).isEqualTo(200);
        assertRateLimited(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, body), "2 requests per minute");
    }

    @Test
    void tokensPerMinute() {
        net = new TestNetwork(new KeyLimits(0, 100, 0), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(1000);
        // The estimate (prompt characters + max_tokens) must fit in what is left of the minute's tokens.
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":10")).status())
                .isEqualTo(200);
        assertRateLimited(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":90")),
                "100 tokens per minute");
    }

    @Test
    void concurrentStreams() {
        net = new TestNetwork(new KeyLimits(0, 0, 1), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(20);
        HttpClientResponse first = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(first);
        TestNetwork.eventually("the first stream runs", () -> sse.size() >= 1);
        assertRateLimited(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "")), "in flight");
        first.request().connection().close();
        TestNetwork.eventually("the permit came back", () ->
                net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":1")).status() == 200);
    }

    @Test
    void aStreamCancelledAsTheNextRequestIsSent_leavesItsConcurrencySlotToIt() {
        net = new TestNetwork(new KeyLimits(0, 0, 1), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(20);
        assertThat(nextRightAfterACancel("", "\"max_tokens\":1")).isEqualTo(200);
        TestNetwork.eventually("both are settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
    }

    @Test
    void aStreamCancelledAsTheNextRequestIsSent_givesBackTheTokensItWasEstimatedAt() {
        net = new TestNetwork(new KeyLimits(0, 1_000, 0), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(20);
        // Each may use 900 tokens and more (its prompt): two do not fit in a minute's 1,000.
        assertThat(nextRightAfterACancel("\"max_tokens\":900", "\"max_tokens\":900")).isEqualTo(200);
        TestNetwork.eventually("both are settled", () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
    }

    @Test
    void overTheConcurrencyLimit_whileTheRunningStreamGoesOn_isStill429() {
        net = new TestNetwork(new KeyLimits(0, 0, 1), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(20);
        HttpClientResponse running = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        long sent = System.nanoTime();
        assertRateLimited(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "")), "in flight");
        // It waited for the running stream to end, as a cancel on its way would have: not for long.
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent)).isGreaterThanOrEqualTo(100).isLessThan(2_000);
        running.request().connection().close();
    }

    /**
     * A stream runs; then, over the same HTTP/2 connection, the next request's frames and the
     * stream's reset go out back to back, in that order, as grpc-js sends them when a call is
     * cancelled and the next one is made at once: the gateway reads the new request before the
     * cancel. Returns the next request's status.
     */
    private int nextRightAfterACancel(String firstExtra, String nextExtra) {
        HttpClient h2 = net.vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(net.gateway.port()));
        try {
            return TestNetwork.await(net.onClientContext(() -> h2.request(TestNetwork.post("/v1/chat/completions", API_KEY))
                    .compose(first -> first.send(chat("synthetic", true, firstExtra)).map(running -> first))
                    .compose(first -> h2.request(TestNetwork.post("/v1/chat/completions", API_KEY)).compose(next -> {
                        Future<HttpClientResponse> answered = next.send(chat("synthetic", false, nextExtra));
                        first.reset();
                        return answered;
                    }))
                    .map(HttpClientResponse::statusCode)));
        } finally {
            h2.close();
        }
    }

    @Test
    void insufficientBalance_is402_andNothingIsReserved() {
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, 10);  // 10 nanoTON
        net.addWorker(1000);
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":50"));
        assertThat(reply.status()).isEqualTo(402);
        assertThat(reply.json().getJsonObject("error").getString("code")).isEqualTo("insufficient_balance");
        // What is held, per token and for how many, so that a client can see why and what to change.
        // Role and content in UTF-8 (ASCII): an upper bound on their tokens; plus what the worker says
        // its chat template adds (the synthetic one, a role marker token per message), which the
        // hold left out (audit H, H-2).
        int promptTokens = ("user" + "tell me about cocoon").length() + 1;
        assertThat(reply.json().getJsonObject("error").getString("message"))
                .contains("up to " + 8 * (50 + promptTokens) + " nanoTON")
                .contains("held at 8 nanoTON per token", "for up to " + (50 + promptTokens) + " tokens", "50 for the completion",
                        promptTokens + " for the prompt (its UTF-8 bytes and the chat template's tokens)")
                .contains("10 nanoTON available").contains("lower max_tokens");
        assertThat(reply.response().getHeader("x-should-retry")).isEqualTo("false");
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton()).isZero();
    }

    @Test
    void flexTraffic_yieldsToInteractiveTraffic() {
        net = new TestNetwork();
        net.addWorker(20, 1, SchedulerOptions.DEFAULTS);  // capacity: one sequence
        HttpClientResponse running = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(running);
        TestNetwork.eventually("the worker is busy", () -> sse.size() >= 1);

        TestNetwork.Reply flex = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"service_tier\":\"flex\",\"max_tokens\":2"));
        assertRateLimited(flex, "Flex capacity");

        // An interactive request still gets in (it waits in the worker's queue, ahead of any flex).
        running.request().connection().close();
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":2")).status())
                .isEqualTo(200);
    }

    @Test
    void flexBurst_leavesAReservedSlot_soADefaultRequestStartsAtOnce() {
        net = new TestNetwork();   // the default reserve: a quarter of each worker's capacity
        net.addWorker(50, 4, SchedulerOptions.DEFAULTS);   // capacity 4: flex may hold 3
        firstTokenMs(chat("synthetic", true, "\"max_tokens\":2"));   // warm
        long idleMs = firstTokenMs(chat("synthetic", true, "\"max_tokens\":2"));

        // Bulk sequences of 20 s each: without the reserve a default request would wait that long for a slot.
        List<HttpClientResponse> bulk = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            HttpClientResponse flex = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", true, "\"service_tier\":\"flex\",\"max_tokens\":1000"));
            assertThat(flex.statusCode()).isEqualTo(200);
            bulk.add(flex);
        }
        assertRateLimited(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"service_tier\":\"flex\",\"max_tokens\":2")), "Flex capacity");

        long busyMs = firstTokenMs(chat("synthetic", true, "\"max_tokens\":2"));
        // Loose for a loaded CI machine: what it tells apart is a free slot against a 20 s wait.
        assertThat(busyMs).as("first token during the burst, idle: " + idleMs + " ms").isLessThan(idleMs + 5_000);
        bulk.forEach(r -> r.request().connection().close());
    }

    /** Milliseconds from sending a stream until its first event arrived; returns once it ended. */
    private long firstTokenMs(String body) {
        long start = System.nanoTime();
        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, body));
        List<SseEvents.Event> events = TestNetwork.await(Future.fromCompletionStage(sse.ended));
        return TimeUnit.NANOSECONDS.toMillis(events.get(0).arrivedNanos() - start);
    }

    /** A chat completion says which tier served it, in the document and in every chunk, as OpenAI's do. */
    @Test
    void chatCompletions_sayTheTierThatServedThem() {
        net = new TestNetwork();
        net.addWorker(1000, 4, SchedulerOptions.DEFAULTS);
        TestNetwork.Reply flex = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"service_tier\":\"flex\",\"max_tokens\":2"));
        assertThat(flex.json().getString("service_tier")).isEqualTo("flex");
        TestNetwork.Reply auto = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"service_tier\":\"auto\",\"max_tokens\":2"));
        assertThat(auto.json().getString("service_tier")).isEqualTo("default");

        SseEvents sse = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"service_tier\":\"flex\",\"max_tokens\":3")));
        List<SseEvents.Event> events = TestNetwork.await(Future.fromCompletionStage(sse.ended));
        List<SseEvents.Event> chunks = events.subList(0, events.size() - 1);  // all but [DONE]
        assertThat(chunks).isNotEmpty().allSatisfy(e -> assertThat(e.data()).contains("\"service_tier\":\"flex\""));
    }

    @Test
    void unknownServiceTier_isRejectedNamingTheParam() {
        net = new TestNetwork();
        net.addWorker(1000);
        TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"service_tier\":\"priority\""));
        assertThat(reply.status()).isEqualTo(400);
        assertThat(reply.json().getJsonObject("error").getString("param")).isEqualTo("service_tier");
    }
}
