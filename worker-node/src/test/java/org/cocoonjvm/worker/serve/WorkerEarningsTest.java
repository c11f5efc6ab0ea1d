package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

/**
 * A real {@link WorkerNode} with a payment state directory, over real HTTP: its lifetime token
 * counts in {@code /status}, {@code /earnings} and {@code /metrics}, saved while it runs and at its
 * stop, and taken up again by the next worker on the same directory.
 */
class WorkerEarningsTest {
    private static final Duration DEADLINE = Duration.ofSeconds(5);
    private static final String KEY = "k";
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String CHAT = "{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3}";

    @TempDir
    Path stateDir;
    private Vertx vertx;
    private WorkerNode node;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(DEADLINE)
            .build();

    @AfterEach
    void stop() {
        http.close();
        if (vertx != null) {
            await(vertx.close());
        }
    }

    private void startWorker() {
        vertx = Vertx.vertx();
        node = new WorkerNode(new SyntheticEngine(500, 4, 2048), new WorkerOptions("worker-test", "127.0.0.1", 0, KEY, null,
                SchedulerOptions.DEFAULTS, 1000, new WorkerPaymentOptions(stateDir, "", 1_000_000, 10_000)));
        await(vertx.deployVerticle(node));
    }

    /** As the launcher's SIGTERM does: the worker drains and stops, then its Vert.x closes. */
    private void stopWorker() {
        await(vertx.close());
        vertx = null;
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new AssertionError("Vert.x future did not complete", e);
        }
    }

    private HttpResponse<String> get(String path, String key) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(node.endpoint() + path)).timeout(DEADLINE).GET();
        if (key != null) {
            request.header("Authorization", "Bearer " + key);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private JsonObject json(String path) throws Exception {
        HttpResponse<String> response = get(path, KEY);
        assertThat(response.statusCode()).isEqualTo(200);
        return new JsonObject(response.body());
    }

    /** The usage of one chat completion of 3 tokens, once the worker has counted them. */
    private JsonObject chat() throws Exception {
        long before = json("/status").getJsonObject("load").getLong("tokens_generated");
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(node.endpoint() + "/v1/chat/completions"))
                .timeout(DEADLINE).header("Authorization", "Bearer " + KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(CHAT)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        JsonObject usage = new JsonObject(response.body()).getJsonObject("usage");
        // The scheduler counts a step's tokens after handing them out: the reply can come first.
        eventually("the worker counted the completion", DEADLINE, () -> {
            try {
                return json("/status").getJsonObject("load").getLong("tokens_generated")
                        == before + usage.getLong("completion_tokens");
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        return usage;
    }

    private static void eventually(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(20);
        }
    }

    /** The value of one series in the worker's {@code /metrics}. */
    private long metric(String series) throws Exception {
        return get("/metrics", KEY).body().lines().filter(l -> l.startsWith(series + " "))
                .mapToLong(l -> (long) Double.parseDouble(l.substring(series.length() + 1))).findFirst()
                .orElseThrow(() -> new AssertionError("no " + series + " in /metrics"));
    }

    @Test
    void earnings_withoutKey_is401() throws Exception {
        startWorker();

        HttpResponse<String> response = get("/earnings", null);

        assertThat(response.statusCode()).isEqualTo(401);
        assertThat(new JsonObject(response.body()).getJsonObject("error").getString("code")).isEqualTo("invalid_api_key");
    }

    @Test
    void aRestartedWorker_keepsItsLifetimeTokens_inStatusEarningsAndMetrics_whileItsRunCountsFromZero() throws Exception {
        startWorker();
        JsonObject usage = chat();
        long completion = usage.getLong("completion_tokens");
        long prompt = usage.getLong("prompt_tokens");
        JsonObject earnings = json("/status").getJsonObject("earnings");
        assertThat(earnings.getLong("completion_tokens")).isEqualTo(completion);
        assertThat(earnings.getLong("prompt_tokens")).isEqualTo(prompt);
        // No gateway, so no channel: nothing earned in nanoTON.
        assertThat(earnings.getLong("earned_nanoton")).isZero();
        assertThat(earnings.getLong("paid_out_nanoton")).isZero();

        stopWorker();
        startWorker();

        JsonObject status = json("/status");
        assertThat(status.getJsonObject("load").getLong("tokens_generated")).isZero();
        assertThat(status.getJsonObject("earnings").getLong("completion_tokens")).isEqualTo(completion);
        assertThat(status.getJsonObject("earnings").getLong("prompt_tokens")).isEqualTo(prompt);
        JsonObject again = chat();
        JsonObject history = json("/earnings");
        assertThat(history.getLong("completion_tokens")).isEqualTo(completion + again.getLong("completion_tokens"));
        assertThat(history.getLong("prompt_tokens")).isEqualTo(prompt + again.getLong("prompt_tokens"));
        assertThat(history.getLong("earned_nanoton")).isZero();
        assertThat(history.getJsonArray("channels")).isEmpty();
        // The lifetime is a gauge; the counters are this process's.
        assertThat(metric("cocoon_worker_lifetime_generation_tokens")).isEqualTo(history.getLong("completion_tokens"));
        assertThat(metric("cocoon_worker_lifetime_prompt_tokens")).isEqualTo(history.getLong("prompt_tokens"));
        assertThat(metric("cocoon_worker_generation_tokens_total")).isEqualTo(again.getLong("completion_tokens"));
        assertThat(metric("cocoon_worker_prompt_tokens_total")).isEqualTo(again.getLong("prompt_tokens"));
    }

    /**
     * Files as a worker wrote them before it kept each channel's payout address and what arrived
     * there: they load, and every view gives what they lack as null, addresses in one form (audit P, P-7).
     */
    @Test
    void channelFilesFromBeforeThePayoutWasKept_load_andTheViewsSayNullForWhatTheyLack_andGiveAddressesInOneForm()
            throws Exception {
        String contract = "0:" + "a0e3".repeat(16);
        Instant opened = Instant.parse("2026-11-01T00:00:00Z");
        store(channelFile(900).put("channel_address", contract).put("settlement", "closed")
                .put("opened_at", opened).put("settled_at", opened.plusSeconds(60)).put("paid_out_nanoton", 900)
                .put("close_message_hash", ""));
        store(channelFile(40).put("channel_address", "").put("settlement", "open")
                .put("opened_at", opened.plusSeconds(61)).putNull("settled_at").put("paid_out_nanoton", 0)
                .put("close_message_hash", ""));
        startWorker();

        JsonArray history = json("/earnings").getJsonArray("channels");
        JsonObject closed = history.getJsonObject(0);  // oldest first
        assertThat(closed.getString("channel_address")).startsWith("EQ");  // a contract: bounceable, as explorers show it
        assertThat(Address.of(closed.getString("channel_address")).toRaw()).isEqualTo(contract);
        assertThat(closed.getString("channel_address_raw")).isEqualTo(contract);
        assertThat(closed.getLong("paid_out_nanoton")).isEqualTo(900);
        for (String unknown : List.of("payout_address", "payout_address_raw", "received_nanoton", "close_message_hash")) {
            assertThat(closed.containsKey(unknown)).as(unknown).isTrue();
            assertThat(closed.getValue(unknown)).as(unknown).isNull();
        }
        JsonObject offChain = history.getJsonObject(1);
        for (String none : List.of("channel_address", "channel_address_raw", "payout_address", "settled_at",
                "received_nanoton", "close_message_hash")) {
            assertThat(offChain.containsKey(none)).as(none).isTrue();
            assertThat(offChain.getValue(none)).as(none).isNull();
        }
        JsonArray channels = json("/status").getJsonArray("channels");
        assertThat(channels).hasSize(2);
        for (Object shown : channels) {
            JsonObject channel = (JsonObject) shown;
            JsonObject same = channel.getString("channel_id").equals(closed.getString("channel_id")) ? closed : offChain;
            assertThat(channel.getString("channel_address")).isEqualTo(same.getString("channel_address"));
            assertThat(channel.getString("channel_address_raw")).isEqualTo(same.getString("channel_address_raw"));
        }
    }

    /** A channel file of a new channel whose gateway's state pays {@code sent}, with the fields every version wrote. */
    private JsonObject channelFile(long sent) {
        PaymentKeyPair gateway = PaymentKeyPair.generate(RANDOM);
        ChannelTerms terms = new ChannelTerms(ChannelId.random(RANDOM), gateway.publicKey(), 1_000_000);
        SignedSemiChannel state = new ChannelPayer(terms, gateway, SemiChannelBody.INITIAL).pay(sent);
        return new JsonObject().put("channel_id", terms.channelId().hex()).put("gateway_public_key", gateway.publicKey().hex())
                .put("deposit_cap_nanoton", terms.depositCapNanoton()).put("seqno", state.seqno()).put("sent_nanoton", sent)
                .put("signed_state_boc", state.bocBase64());
    }

    private void store(JsonObject channelFile) throws IOException {
        Files.writeString(stateDir.resolve("channel-" + channelFile.getString("channel_id") + ".json"),
                channelFile.encodePrettily());
    }

    @Test
    void aRunningWorker_savesItsTokensWithinTheSaveInterval_soACrashLosesNoMoreThanThat() throws Exception {
        startWorker();
        long completion = chat().getLong("completion_tokens");
        Path saved = stateDir.resolve("tokens.json");

        // No stop: what a crash now would leave on disk.
        eventually("the tokens are saved", Duration.ofMillis(WorkerNode.TOKEN_SAVE_MS).plus(DEADLINE), () -> {
            try {
                return Files.exists(saved) && new JsonObject(Files.readString(saved)).getLong("completion_tokens") == completion;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
    }
}
