package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

/** {@code cocoon worker earnings}: a stopped worker's payment directory read offline, as its {@code GET /earnings} shows it. */
class WorkerEarningsCommandTest {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String CONTRACT = "0:" + "a0e3".repeat(16);

    @TempDir
    Path paymentDir;

    @Test
    void earnings_ofAStoppedWorker_areWhatItsEarningsEndpointShowed() throws Exception {
        String payout = "0:" + "fd17".repeat(16);
        storeClosedChannel(payout);
        Vertx vertx = Vertx.vertx();
        JsonObject shown;
        try (HttpClient http = HttpClient.newHttpClient()) {
            WorkerNode worker = new WorkerNode(new SyntheticEngine(500, 4, 2048), new WorkerOptions("w", "127.0.0.1", 0,
                    null, null, SchedulerOptions.DEFAULTS, 1000, new WorkerPaymentOptions(paymentDir, "", 1_000_000, 10_000)));
            vertx.deployVerticle(worker).await(5, TimeUnit.SECONDS);
            HttpResponse<String> chat = http.send(HttpRequest.newBuilder(URI.create(worker.endpoint() + "/v1/completions"))
                    .header("Content-Type", "application/json").timeout(Duration.ofSeconds(5))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"synthetic\",\"prompt\":\"x\",\"max_tokens\":3}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertThat(chat.statusCode()).isEqualTo(200);
            // The scheduler counts a step's tokens after handing them out: the reply can come first.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            do {
                shown = new JsonObject(http.send(HttpRequest.newBuilder(URI.create(worker.endpoint() + "/earnings")).build(),
                        HttpResponse.BodyHandlers.ofString()).body());
            } while (shown.getLong("completion_tokens") < 3 && System.nanoTime() - deadline < 0);
        } finally {
            vertx.close().await(5, TimeUnit.SECONDS);  // the stop saves the tokens
        }

        CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", paymentDir.toString());

        assertThat(run.exit()).as(run.err()).isZero();
        assertThat(new JsonObject(run.out())).isEqualTo(shown);
        assertThat(shown.getLong("completion_tokens")).isEqualTo(3);
        assertThat(shown.getLong("prompt_tokens")).isPositive();
        JsonObject closed = shown.getJsonArray("channels").getJsonObject(0);
        assertThat(closed.getString("channel_address")).isEqualTo(Address.of(CONTRACT).toBounceable());
        assertThat(closed.getString("channel_address_raw")).isEqualTo(CONTRACT);
        assertThat(closed.getString("payout_address")).isEqualTo(Address.of(payout).toNonBounceable());
        assertThat(closed.getString("payout_address_raw")).isEqualTo(payout);
        assertThat(closed.getLong("paid_out_nanoton")).isEqualTo(900_000);
        assertThat(closed.getLong("received_nanoton")).isEqualTo(500_000);
    }

    /** A channel closed on chain at {@link #CONTRACT}, paying out to {@code payout}, as the worker stores it. */
    private Path storeClosedChannel(String payout) throws Exception {
        PaymentKeyPair gateway = PaymentKeyPair.generate(RANDOM);
        ChannelTerms terms = new ChannelTerms(ChannelId.random(RANDOM), gateway.publicKey(), 1_000_000);
        SignedSemiChannel state = new ChannelPayer(terms, gateway, SemiChannelBody.INITIAL).pay(900_000);
        return Files.writeString(paymentDir.resolve("channel-" + terms.channelId().hex() + ".json"), new JsonObject()
                .put("channel_id", terms.channelId().hex()).put("gateway_public_key", gateway.publicKey().hex())
                .put("deposit_cap_nanoton", 1_000_000).put("seqno", 1).put("sent_nanoton", 900_000)
                .put("signed_state_boc", state.bocBase64()).put("channel_address", CONTRACT).put("settlement", "closed")
                .put("opened_at", "2026-11-01T00:00:00Z").put("settled_at", "2026-11-01T00:01:00Z")
                .put("paid_out_nanoton", 900_000).put("close_message_hash", "aGFzaA==").put("payout_address", payout)
                .put("received_nanoton", 500_000).encodePrettily());
    }

    @Test
    void earnings_withAGarbledAddressInAChannelFile_isOneLineNamingIt_notAFailedView() throws Exception {
        Files.writeString(paymentDir.resolve("payment-key"), "00".repeat(32));
        Path channel = storeClosedChannel("UQ-not-an-address");

        CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", paymentDir.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).startsWith("cocoon: the stored channel state " + channel + " is unusable (payout_address "
                + "'UQ-not-an-address' is not a TON address): restore the file from a backup").doesNotContain("\n");
        assertThat(run.out()).isEmpty();
    }

    @Test
    void earnings_ofAMissingDirectory_isOneLineNamingIt() {
        Path missing = paymentDir.resolve("nonexistent");

        CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", missing.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).isEqualTo("cocoon: " + missing + ": no such file or directory");
        assertThat(missing).doesNotExist();  // read only: nothing created
    }

    @Test
    void earnings_withAnUnusableTokenFile_isOneLineNamingIt() throws Exception {
        Files.writeString(paymentDir.resolve("payment-key"), "00".repeat(32));
        Path tokens = Files.writeString(paymentDir.resolve("tokens.json"), "{\"completion_tokens\": 3}");

        CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", paymentDir.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).isEqualTo("cocoon: the token counts " + tokens + " are unusable (prompt_tokens is missing): "
                + "restore the file, or move it aside to count this worker's tokens from 0 (what it earned is kept in its "
                + "channel files, not there)");
        assertThat(run.out()).isEmpty();
    }

    @Test
    void earnings_ofADirectoryWithNoPaymentKey_isRefused_notAllZeros() throws Exception {
        Files.writeString(paymentDir.resolve("ledger.json"), "{}");  // a gateway's data dir, say

        CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", paymentDir.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).isEqualTo("cocoon: " + paymentDir + " holds no worker payment state (no payment-key): "
                + "not a directory a worker was started with as --payment-dir");
        assertThat(run.out()).isEmpty();
    }

    @Test
    void earnings_ofAPlainFile_saysItIsNotADirectory() throws Exception {
        Path file = Files.writeString(paymentDir.resolve("tokens.json"), "{}");

        CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", file.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).isEqualTo("cocoon: " + file + " is not a directory: --payment-dir names the directory "
                + "the worker was started with");
    }

    @Test
    void earnings_withATokenFileThatIsAFolder_isOneLine() throws Exception {
        Files.writeString(paymentDir.resolve("payment-key"), "00".repeat(32));
        Path tokens = Files.createDirectory(paymentDir.resolve("tokens.json"));

        CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", paymentDir.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).startsWith("cocoon: the token counts " + tokens + " are unusable (it is not a file)")
                .doesNotContain("\n");
    }

    @Test
    void earnings_withHugeOrFractionalTokenCounts_refusesThemAsCorrupt_ratherThanTruncating() throws Exception {
        Files.writeString(paymentDir.resolve("payment-key"), "00".repeat(32));
        Path tokens = paymentDir.resolve("tokens.json");
        for (String count : new String[] {"99999999999999999999999", "1.5", "\"7\"", "-1"}) {
            Files.writeString(tokens, "{\"completion_tokens\": " + count + ", \"prompt_tokens\": 2}");

            CliRun run = CliRun.cocoon("worker", "earnings", "--payment-dir", paymentDir.toString());

            assertThat(run.exit()).as(count).isEqualTo(1);
            assertThat(run.err()).as(count).startsWith("cocoon: the token counts " + tokens + " are unusable (completion_tokens is ")
                    .contains("not a whole number from 0 to " + Long.MAX_VALUE);
            assertThat(run.out()).isEmpty();
        }
    }

    @Test
    void aWorker_withACorruptTokenFile_doesNotStart_andSaysSoInOneLine() throws Exception {
        Path tokens = Files.writeString(paymentDir.resolve("tokens.json"), "{\"completion_tokens\": \"x\"");

        CliRun run = CliRun.cocoon("worker", "--id", "w", "--engine", "synthetic", "--host", "127.0.0.1", "--port", "0",
                "--payment-dir", paymentDir.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).startsWith("cocoon: the token counts " + tokens + " are unusable (Unexpected end-of-input")
                .endsWith("restore the file, or move it aside to count this worker's tokens from 0 (what it earned is "
                        + "kept in its channel files, not there)")
                .doesNotContain("\n").doesNotContain("[Source");
    }

    @Test
    void aWorker_withAGarbledChannelFile_doesNotStart_andSaysSoInOneLine() throws Exception {
        Path channel = Files.writeString(paymentDir.resolve("channel-" + "ab".repeat(32) + ".json"), "{\"channel_id\": ");

        CliRun run = CliRun.cocoon("worker", "--id", "w", "--engine", "synthetic", "--host", "127.0.0.1", "--port", "0",
                "--payment-dir", paymentDir.toString());

        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.err()).startsWith("cocoon: the stored channel state " + channel + " is unusable (")
                .endsWith("restore the file from a backup; the worker does not start without it, as it would forget "
                        + "what that channel paid")
                .doesNotContain("\n").doesNotContain("[Source");
    }
}
