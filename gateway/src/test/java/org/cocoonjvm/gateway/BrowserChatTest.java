package org.cocoonjvm.gateway;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.browser.Chromium;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway as a chat frontend meets it, in a real browser: a page served from another origin
 * than the gateway's (so each call, carrying a key, is preflighted under CORS) streams a chat with
 * fetch, reads errors, and stops a stream. The page is {@code chat-page.html}; headless Chromium
 * runs it. Skipped without Chromium, except under CI=true ({@code .ci/run} installs it).
 */
class BrowserChatTest {
    private static final String NO_CHROMIUM = "no Chromium: apt-get install chromium-headless-shell, or set COCOON_CHROMIUM";
    private static Vertx pages;
    private static String pageUrl;
    private static Chromium chromium;
    private TestNetwork net;

    @BeforeAll
    static void launch() throws IOException {
        Optional<Path> binary = Chromium.find();
        if ("true".equals(System.getenv("CI"))) {
            assertThat(binary).as("CI=true, but " + NO_CHROMIUM).isPresent();
        }
        // Each test skips then, saying why: Surefire reports a class skipped here as no tests at all.
        if (binary.isEmpty()) {
            return;
        }
        String page;
        try (InputStream in = BrowserChatTest.class.getResourceAsStream("chat-page.html")) {
            page = new String(in.readAllBytes(), UTF_8);
        }
        pages = Vertx.vertx();
        HttpServer server = await(pages.createHttpServer().requestHandler(request -> {
            if (request.path().equals("/")) {
                request.response().putHeader("Content-Type", "text/html; charset=utf-8").end(page);
            } else {
                request.response().setStatusCode(404).end();
            }
        }).listen(0, "127.0.0.1"));
        pageUrl = "http://127.0.0.1:" + server.actualPort() + "/";
        chromium = Chromium.launch(binary.get());
    }

    @AfterAll
    static void quit() {
        if (chromium != null) {
            chromium.close();
        }
        if (pages != null) {
            await(pages.close());
        }
    }

    @BeforeEach
    void openPage() {
        assumeTrue(chromium != null, NO_CHROMIUM);
        chromium.navigate(pageUrl);
    }

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
    }

    /** The gateway's origin: the same host as the page's, another port, so another origin. */
    private String gateway() {
        return "http://127.0.0.1:" + net.gateway.port();
    }

    @Test
    void streamedChat_arrivesTokenByToken_asAJavaClientGetsIt_thenUsageWithCost_thenDone() throws Exception {
        net = new TestNetwork();
        net.addWorker(20);  // a token every 50 ms
        JsonObject request = new JsonObject(chat("synthetic", true,
                "\"max_tokens\":16,\"seed\":7,\"stream_options\":{\"include_usage\":true}"));
        List<SseEvents.Event> javaClient = SseEvents.read(net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                request.encode())).ended.get(20, TimeUnit.SECONDS);

        JsonObject page = chromium.call("streamChat", gateway(), API_KEY, request);

        assertThat(page.getInteger("status")).isEqualTo(200);
        assertThat(page.getString("contentType")).startsWith("text/event-stream");
        // A header the gateway sends but does not expose stays hidden from the page: the call
        // really was cross-origin, and x-request-id is readable only because it is exposed.
        assertThat(page.getString("accelBuffering")).isNull();
        List<SseEvents.Event> events = events(page);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        List<SseEvents.Event> deltas = events.stream().filter(e -> SseEvents.content(e) != null).toList();
        assertThat(SseEvents.text(deltas)).isNotBlank().isEqualTo(SseEvents.text(javaClient));
        // Sixteen tokens 50 ms apart take 750 ms from first to last; a relay or a reader that
        // buffered would have handed them to the page together.
        assertThat(TimeUnit.NANOSECONDS.toMillis(deltas.getLast().arrivedNanos() - deltas.getFirst().arrivedNanos()))
                .isGreaterThanOrEqualTo(300);

        JsonObject usageChunk = new JsonObject(events.get(events.size() - 2).data());
        assertThat(usageChunk.getJsonArray("choices")).isEmpty();
        assertThat(page.getString("requestId")).as("x-request-id, as the page reads it").isEqualTo(usageChunk.getString("id"));
        JsonObject usage = usageChunk.getJsonObject("usage");
        assertThat(usage.getLong("completion_tokens")).isEqualTo(16);
        // Cocoon's test prices: 2 nanoTON a token.
        assertThat(usage.getLong("prompt_total_cost")).isEqualTo(2 * usage.getLong("prompt_tokens"));
        assertThat(usage.getLong("completion_total_cost")).isEqualTo(2 * 16);
        assertThat(usage.getLong("total_cost")).isEqualTo(2 * usage.getLong("total_tokens"));
    }

    @Test
    void wrongKey_is401_withAnErrorBodyThePageCanRead() {
        net = new TestNetwork();

        JsonObject page = chromium.call("call", gateway(), "sk-wrong", new JsonObject(chat("synthetic", false, "")));

        assertThat(page.getInteger("status")).isEqualTo(401);
        JsonObject error = page.getJsonObject("body").getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("authentication_error");
        assertThat(error.getString("code")).isEqualTo("invalid_api_key");
        assertThat(error.getString("message")).isNotBlank();
    }

    @Test
    void rateLimited_is429_withARetryAfterThePageCanRead() {
        net = new TestNetwork(new KeyLimits(1, 0, 0), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(1000);
        JsonObject request = new JsonObject(chat("synthetic", false, "\"max_tokens\":2"));
        assertThat(chromium.call("call", gateway(), API_KEY, request).getInteger("status")).isEqualTo(200);

        JsonObject page = chromium.call("call", gateway(), API_KEY, request);

        assertThat(page.getInteger("status")).isEqualTo(429);
        assertThat(page.getJsonObject("body").getJsonObject("error").getString("code")).isEqualTo("rate_limit_exceeded");
        // Readable only because the gateway exposes it: without that, the page would see null.
        assertThat(page.getString("retryAfter")).as("Retry-After, as the page reads it").isNotNull();
        assertThat(Integer.parseInt(page.getString("retryAfter"))).isPositive();
    }

    @Test
    void stopButton_endsTheWorkersSequence_andWhatItMadeIsBilled() throws Exception {
        net = new TestNetwork();
        // Replies of 200 tokens at 20 a second: a sequence that ends within seconds was cancelled.
        WorkerNode worker = net.addWorker(new SyntheticEngine(20, 4, 4096, 200), SchedulerOptions.DEFAULTS, 2_000);

        JsonObject page = chromium.call("stopAfterFirstToken", gateway(), API_KEY, new JsonObject(chat("synthetic", true, "")));

        assertThat(page.getString("error")).isEqualTo("AbortError");
        long shown = events(page).stream().filter(e -> SseEvents.content(e) != null).count();
        assertThat(shown).isPositive();
        MeterRegistry meters = net.gateway.meters();
        TestNetwork.eventually("the gateway saw the client leave",
                () -> meters.find("cocoon.client.disconnects").counter().count() == 1);
        TestNetwork.eventually("the worker stopped the sequence",
                () -> net.workerStatus(worker).getJsonObject("load").getInteger("running") == 0);
        long generated = net.workerStatus(worker).getJsonObject("load").getLong("tokens_generated");
        Thread.sleep(300);  // six more tokens, had it kept going
        assertThat(net.workerStatus(worker).getJsonObject("load").getLong("tokens_generated")).isEqualTo(generated);
        assertThat(generated).isLessThan(200);

        // Billed: the prompt and every token the worker sent before it was stopped, at 2 nanoTON each.
        TestNetwork.eventually("the request is settled",
                () -> net.accounts.balance(TestNetwork.ACCOUNT).reservedNanoton() == 0);
        long completionTokens = (long) meters.get("cocoon.generation").tag("model", "synthetic").functionCounter().count();
        long promptTokens = (long) meters.get("cocoon.prompt").tag("model", "synthetic").counter().count();
        assertThat(completionTokens).isBetween(shown, generated);
        assertThat(promptTokens).isPositive();
        assertThat(net.accounts.balance(TestNetwork.ACCOUNT).spentNanoton()).isEqualTo(2 * (promptTokens + completionTokens));
    }

    /** The events the page recorded, each with when it arrived on the page's clock. */
    private static List<SseEvents.Event> events(JsonObject page) {
        return page.getJsonArray("events").stream().map(JsonObject.class::cast)
                .map(e -> new SseEvents.Event(e.getString("data"), Math.round(e.getDouble("at") * 1e6))).toList();
    }
}
