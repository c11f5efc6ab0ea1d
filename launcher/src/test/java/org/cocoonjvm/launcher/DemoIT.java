package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.CompletionUsage;
import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.protocol.transport.NetTransport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The packaged launcher as a user runs it: {@code cocoon demo} in its own process, driven by
 * OpenAI's official Java client, then stopped with SIGTERM.
 */
class DemoIT {
    private static Process demo;
    private static JsonObject ready;

    @BeforeAll
    static void startDemo() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // On io_uring where the machine has it: CI's own demo run (.ci/run) covers the default, NIO.
        String transport = NetTransport.IO_URING.available() ? "io_uring" : "nio";
        demo = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-jar", System.getProperty("cocoon.jar"),
                "demo", "--port", "0", "--api-key", "sk-test", "--workers", "2", "--transport", transport)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        BufferedReader stdout = new BufferedReader(new InputStreamReader(demo.getInputStream(), StandardCharsets.UTF_8));
        String line = CompletableFuture.supplyAsync(() -> {
            try {
                return stdout.readLine();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }).get(60, TimeUnit.SECONDS);
        ready = new JsonObject(line);
    }

    @AfterAll
    static void killLeftovers() {
        if (demo != null && demo.isAlive()) {
            demo.destroyForcibly();
        }
    }

    private static OpenAIClient client() {
        return OpenAIOkHttpClient.builder().apiKey("sk-test").baseUrl(ready.getString("gateway") + "/v1").maxRetries(0).build();
    }

    @Test
    void readyLine_hasEveryField() {
        assertThat(ready.fieldNames()).containsExactlyInAnyOrder("event", "gateway", "api_key", "admin_key", "workers", "model",
                "funding", "attestation");
        assertThat(ready.getString("attestation")).isEqualTo("dev (not hardware-backed)");
        assertThat(ready.getString("event")).isEqualTo("ready");
        assertThat(ready.getString("gateway")).startsWith("http://127.0.0.1:");
        assertThat(ready.getString("api_key")).isEqualTo("sk-test");
        assertThat(ready.getString("admin_key")).isNotBlank();
        assertThat(ready.getJsonArray("workers")).hasSize(2);
        assertThat(ready.getString("model")).isEqualTo("cocoon-demo-qwen2");  // the native engine's embedded model
    }

    @Test
    void officialClient_consumesTheStream_withUsage() {
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()
                .model(ready.getString("model"))
                .addUserMessage("Say something about Cocoon.")
                .maxCompletionTokens(16)
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
                .build();
        List<CompletionUsage> usages = new ArrayList<>();
        List<String> finishReasons = new ArrayList<>();
        int chunks = 0;
        try (StreamResponse<ChatCompletionChunk> stream = client().chat().completions().createStreaming(params)) {
            for (ChatCompletionChunk chunk : (Iterable<ChatCompletionChunk>) stream.stream()::iterator) {
                chunk.validate();  // strict: throws if any field has the wrong shape
                chunks++;
                chunk.usage().ifPresent(usages::add);
                for (ChatCompletionChunk.Choice choice : chunk.choices()) {
                    choice.finishReason().ifPresent(r -> finishReasons.add(r.asString()));
                }
            }
        }
        // A random-weight model: any text, and it may pick an end-of-sequence token before 16.
        assertThat(usages).hasSize(1);
        long completion = usages.getFirst().completionTokens();
        assertThat(completion).isBetween(1L, 16L);
        assertThat(finishReasons).containsExactly(completion == 16 ? "length" : "stop");
        assertThat(chunks).isGreaterThanOrEqualTo(3);
        assertThat(usages.getFirst().totalTokens()).isEqualTo(usages.getFirst().promptTokens() + completion);
    }

    /** With Node.js and the emulator's packages (always under CI) the account was paid on the local chain. */
    @Test
    void account_isFundedAsTheReadyLineSays() throws Exception {
        String funding = ready.getString("funding");
        if ("true".equals(System.getenv("CI"))) {
            assertThat(funding).isEqualTo("chain");
        }
        assertThat(funding).isIn("chain", "grant");
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create(ready.getString("gateway") + "/v1/account"))
                        .header("Authorization", "Bearer sk-test").build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        JsonObject account = new JsonObject(response.body());
        // Other tests may have spent some of it already; what came in stays balance + spent.
        assertThat(account.getLong("balance_nanoton") + account.getLong("spent_nanoton"))
                .isEqualTo(DemoCommand.DEMO_GRANT_NANOTON);
        if (funding.equals("chain")) {
            assertThat(account.getString("deposit_address")).startsWith("UQ");
        }
    }

    @Test
    void workersAreDevAttested_andTheGatewayPublishesItsEvidence() throws Exception {
        java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
        JsonObject admin = new JsonObject(http.send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create(ready.getString("gateway") + "/admin/workers"))
                .header("Authorization", "Bearer " + ready.getString("admin_key")).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString()).body());
        assertThat(admin.getJsonArray("workers")).hasSize(2).allSatisfy(w -> {
            assertThat(((JsonObject) w).getString("attestation")).isEqualTo("verified");
            assertThat(((JsonObject) w).getString("tee")).isEqualTo("dev (not hardware-backed)");
        });
        JsonObject evidence = new JsonObject(http.send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create(ready.getString("gateway") + "/v1/attestation")).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString()).body());
        assertThat(evidence.getString("tee")).isEqualTo("dev (not hardware-backed)");
        assertThat(evidence.getJsonObject("attestation").getBoolean("accepted")).isTrue();
    }

    @Test
    void officialClient_nonStreaming() {
        ChatCompletion completion = client().chat().completions().create(ChatCompletionCreateParams.builder()
                .model(ready.getString("model")).addUserMessage("Hello").maxCompletionTokens(5).build());
        completion.validate();
        assertThat(completion.choices().getFirst().message().content()).isPresent();
        assertThat(completion.usage().orElseThrow().completionTokens()).isBetween(1L, 5L);
    }

    @Test
    void zz_sigterm_stopsWithinTenSeconds() throws Exception {
        long start = System.nanoTime();
        demo.destroy();  // SIGTERM
        assertThat(demo.waitFor(10, TimeUnit.SECONDS)).as("exited within 10 s").isTrue();
        // 143 = 128 + SIGTERM: the JVM's status after its shutdown hooks ran to completion.
        assertThat(demo.exitValue()).isIn(0, 143);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(10_000);
    }
}
