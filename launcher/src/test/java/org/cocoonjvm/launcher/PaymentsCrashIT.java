package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 6's money acceptance with real processes: {@code cocoon gateway} (H2 file ledger and
 * channel journal in a temp data dir, per-token payments) and {@code cocoon worker --engine
 * synthetic} (a payment dir), each in its own JVM, each killed with SIGKILL mid-stream and
 * started again over the same files.
 *
 * <p>Prices are 2 nanoTON a token for the client and 1 for the worker, so the worker fees of
 * what the ledger bills are exactly half of the client's debits. What holds, to the nanoTON:
 * <ul>
 *   <li>at every quiet point with the gateway alive (a worker killed and restarted included), the
 *       worker's latest state carries exactly half of the client's debits: every metered token is
 *       billed to the client and paid to the worker, and the margin is the other half;</li>
 *   <li>after the gateway is killed: the requests it had in flight are billed at their last
 *       checkpoint at restart, and the restarted gateway pays the worker their fees too, those
 *       checkpointed but not yet signed when it died included: the worker's state is again
 *       exactly half of the debits, and everything after the restart is paid in full on the same
 *       channel, with seqnos above the journal's. The restarted gateway writes each interrupted
 *       request's access-log line, counts it in /metrics and answers GET /v1/requests/{id} for it,
 *       all at what its recovery charged (audit V, V-8).</li>
 *   <li>in the ledger's file at the end: debits = the usage records (the recovered checkpoints'
 *       included), the journal's last state is the one the worker holds, and it equals the sum of
 *       the worker fees the ledger records; the margin is the difference.</li>
 * </ul>
 */
class PaymentsCrashIT {
    private static final String API_KEY = "sk-crash";
    private static final String ADMIN_KEY = "admin-crash";

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)  // the failure message points at the logs in it
    Path dir;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final CocoonProcesses cocoon = new CocoonProcesses();
    private int gatewayPort;
    private Process gateway;
    private Process worker;
    private String workerUrl;
    private String model;
    private String lastSeen = "";

    @AfterEach
    void killLeftovers() {
        cocoon.close();
    }

    @Test
    void workerAndGatewayKilledMidStream_debitsAndPaymentsStayExact() throws Exception {
        gatewayPort = freePort();
        startGateway();
        startWorker();
        model = status().getJsonArray("models").getJsonObject(0).getString("name");

        for (int i = 0; i < 3; i++) {
            request(30 + i);
        }
        eventually("the worker holds half the debits", this::workerHoldsHalf);
        long seqnoBefore = channel().getLong("seqno");
        assertThat(seqnoBefore).as("per-token states").isGreaterThan(10);

        // The worker dies mid-stream: the gateway bills both sides what it metered.
        List<CompletableFuture<?>> cut = streams(2, 400);
        Thread.sleep(800);
        kill(worker);
        awaitAll(cut);
        startWorker();
        for (int i = 0; i < 3; i++) {
            request(25 + i);
        }
        eventually("after the worker's restart, the worker holds half the debits", this::workerHoldsHalf);
        long spentBeforeGatewayKill = spent();

        // The gateway dies mid-stream: its in-flight requests are billed at their last checkpoint.
        cut = streams(2, 400);
        Thread.sleep(800);
        kill(gateway);
        awaitAll(cut);
        startGateway();
        eventually("the worker is back", () -> registered("w1"));
        long spentAfterRecovery = spent();
        long recovered = spentAfterRecovery - spentBeforeGatewayKill;
        assertThat(recovered).as("the interrupted requests' checkpoints").isPositive();
        List<JsonObject> recoveredLines = Files.readAllLines(dir.resolve("gateway.log")).stream()
                .filter(line -> line.startsWith("{") && line.contains("\"error\":\"gateway_restarted\""))
                .map(JsonObject::new).toList();
        assertThat(recoveredLines).as("one access-log line per interrupted request").hasSize(2);
        assertThat(recoveredLines.stream().mapToLong(line -> line.getLong("cost_nanoton")).sum()).isEqualTo(recovered);
        for (JsonObject line : recoveredLines) {
            assertThat(line.getString("worker")).isEqualTo("w1");
            JsonObject usage = new JsonObject(get("/v1/requests/" + line.getString("request_id"), API_KEY).body())
                    .getJsonObject("usage");
            assertThat(usage.getLong("total_cost")).as("looked up at its charge").isEqualTo(line.getLong("cost_nanoton"));
            assertThat(usage.getLong("completion_tokens")).isEqualTo(line.getLong("completion_tokens"));
        }
        String metrics = get("/metrics", null).body();
        assertThat(counter(metrics, "cocoon_recovered_requests_total")).isEqualTo(2);
        assertThat(counter(metrics, "cocoon_recovered_billed_nanoton_total")).isEqualTo(recovered);
        // Checkpointed before the kill, maybe not yet signed: the restarted gateway pays the fees of
        // everything the ledger bills on the channel, no more.
        eventually("after the gateway's restart, the worker holds half the debits", this::workerHoldsHalf);
        assertThat(spent()).as("nothing billed since the recovery").isEqualTo(spentAfterRecovery);

        long seqnoAtRestart = channel().getLong("seqno");
        for (int i = 0; i < 3; i++) {
            request(20 + i);
        }
        eventually("the requests after the restart are paid in full", this::workerHoldsHalf);
        long spentAtEnd = spent();
        long sentAtEnd = sent();
        assertThat(channel().getLong("seqno")).as("the same channel, seqnos above the journal's")
                .isGreaterThan(seqnoAtRestart);
        JsonObject account = account();
        assertThat(account.getLong("reserved_nanoton")).isZero();
        assertThat(account.getLong("spent_nanoton") - sentAtEnd).as("the gateway's margin").isEqualTo(spentAtEnd / 2);
        JsonObject last = channel();

        // The ledger's own records, read once the gateway has stopped (H2 allows one process).
        gateway.destroy();
        assertThat(gateway.waitFor(30, TimeUnit.SECONDS)).isTrue();
        try (Connection c = DriverManager.getConnection("jdbc:h2:file:" + dir.resolve("gateway").resolve("ledger"));
             Statement st = c.createStatement()) {
            long[] audited = row(st, "SELECT COALESCE(SUM(client_cost_nanoton), 0), COALESCE(SUM(worker_fee_nanoton), 0) "
                    + "FROM requests");
            long unaudited = row(st, "SELECT COALESCE(SUM(charged_nanoton), 0) FROM reservations r "
                    + "WHERE NOT EXISTS (SELECT 1 FROM requests q WHERE q.reservation_id = r.reservation_id)")[0];
            long[] journal = row(st, "SELECT last_seqno, last_sent_nanoton FROM channels");
            long fees = row(st, "SELECT COALESCE(SUM(COALESCE(q.worker_fee_nanoton, r.worker_fee_nanoton)), 0) "
                    + "FROM reservations r LEFT JOIN requests q ON q.reservation_id = r.reservation_id")[0];
            assertThat(journal[1]).as("the worker's latest state = the sum of its fees in the ledger").isEqualTo(fees);
            assertThat(spentAtEnd - fees).as("margin = debits - worker fees").isEqualTo(spentAtEnd / 2);
            assertThat(audited[0]).as("debits = usage records, the recovered checkpoints' included").isEqualTo(spentAtEnd);
            assertThat(unaudited).as("the requests cut by the gateway's death are recorded too").isZero();
            assertThat(audited[1] * 2).as("worker fee = half the price, per record").isEqualTo(audited[0]);
            assertThat(journal).as("the journal's last state is the worker's")
                    .containsExactly(last.getLong("seqno"), last.getLong("sent_nanoton"));
        }
    }

    /**
     * A gateway that never pays (K and T out of reach) and a worker with a credit window of 30
     * tokens' fees: the worker pauses the stream at its window, fails it with payment_overdue once
     * the payment timeout is over, and its /status owes what the gateway says it owes.
     */
    @Test
    void aGatewayThatDoesNotPay_isPausedAtTheWorkersCreditWindow_thenFailedAsOverdue() throws Exception {
        long feePerToken = 100_000;
        long window = 30 * feePerToken;
        gatewayPort = freePort();
        startGateway("--grant-nanoton", "100000000000", "--payment-every-tokens", "1000000",
                "--payment-every-ms", "100000000", "--worker-fee-per-token", String.valueOf(feePerToken),
                "--price-per-token", String.valueOf(2 * feePerToken));
        startWorker("--credit-window-nanoton", String.valueOf(window), "--payment-timeout-ms", "1500");
        model = status().getJsonArray("models").getJsonObject(0).getString("name");

        long startNanos = System.nanoTime();
        HttpResponse<String> reply = http.send(completion(300), HttpResponse.BodyHandlers.ofString());
        long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);

        assertThat(reply.statusCode()).isEqualTo(200);  // the stream had started: the error is in-band
        assertThat(reply.body()).contains("payment_overdue").contains("credit window of " + window + " nanoTON");
        assertThat(tookMs).as("paused, then failed after the 1.5 s timeout").isGreaterThanOrEqualTo(1_500);
        long unpaid = channel().getLong("unpaid_nanoton");
        assertThat(unpaid).as("paused at the window: one step past it at most").isGreaterThan(window)
                .isLessThanOrEqualTo(window + 2 * feePerToken);
        JsonObject owedByGateway = new JsonObject(get("/admin/workers", ADMIN_KEY).body()).getJsonArray("workers")
                .getJsonObject(0).getJsonObject("billing");
        assertThat(owedByGateway.getLong("unpaid_nanoton")).as("what the gateway metered").isEqualTo(unpaid);
        assertThat(channel().getLong("seqno")).isZero();
    }

    /** The value of {@code name}'s {@code gateway_restarted} series in a Prometheus scrape. */
    private static long counter(String scrape, String name) {
        Matcher m = Pattern.compile("(?m)^" + name + "\\{code=\"gateway_restarted\"\\} (\\S+)$").matcher(scrape);
        assertThat(m.find()).as(name + " in " + scrape).isTrue();
        return (long) Double.parseDouble(m.group(1));
    }

    private static long[] row(Statement st, String sql) throws Exception {
        try (ResultSet rs = st.executeQuery(sql)) {
            assertThat(rs.next()).as(sql).isTrue();
            long[] values = new long[rs.getMetaData().getColumnCount()];
            for (int i = 0; i < values.length; i++) {
                values[i] = rs.getLong(i + 1);
            }
            assertThat(rs.next()).as("one row: " + sql).isFalse();
            return values;
        }
    }

    private void startGateway() throws Exception {
        startGateway("--grant-nanoton", "1000000000", "--payment-every-tokens", "1", "--payment-every-ms", "50");
    }

    private void startGateway(String... terms) throws Exception {
        List<String> args = new ArrayList<>(List.of("gateway", "--port", String.valueOf(gatewayPort),
                "--api-key", API_KEY, "--admin-key", ADMIN_KEY, "--data-dir", dir.resolve("gateway").toString()));
        args.addAll(List.of(terms));
        gateway = cocoon.start(dir.resolve("gateway.log"), args.toArray(String[]::new));
        eventually("the gateway answers", () -> {
            try {
                return get("/health", null).statusCode() == 200;
            } catch (IOException e) {
                return false;
            }
        });
    }

    private void startWorker(String... terms) throws Exception {
        List<String> args = new ArrayList<>(List.of("worker", "--id", "w1", "--gateway",
                "127.0.0.1:" + gatewayPort, "--engine", "synthetic", "--synthetic-rate", "100",
                "--synthetic-reply-tokens", "1000",   // replies end at max_tokens: the long streams last 4 s
                "--payment-dir", dir.resolve("worker-payments").toString()));
        args.addAll(List.of(terms));
        worker = cocoon.start(dir.resolve("worker.log"), args.toArray(String[]::new));
        BufferedReader stdout = new BufferedReader(new InputStreamReader(worker.getInputStream(), StandardCharsets.UTF_8));
        String line = CompletableFuture.supplyAsync(() -> {
            try {
                return stdout.readLine();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).get(60, TimeUnit.SECONDS);
        workerUrl = new JsonObject(line).getString("worker");
        eventually("the gateway routes to the worker", () -> registered("w1") && !status().getJsonArray("channels").isEmpty());
    }


    private static void kill(Process p) throws InterruptedException {
        p.destroyForcibly();   // SIGKILL
        assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
    }

    private void request(int maxTokens) throws Exception {
        HttpResponse<String> response = http.send(completion(maxTokens), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.body()).contains("[DONE]");
    }

    /** Long streams, left running; they end with the process that is killed under them. */
    private List<CompletableFuture<?>> streams(int n, int maxTokens) {
        List<CompletableFuture<?>> all = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            all.add(http.sendAsync(completion(maxTokens), HttpResponse.BodyHandlers.ofString()));
        }
        return all;
    }

    private static void awaitAll(List<CompletableFuture<?>> streams) {
        for (CompletableFuture<?> s : streams) {
            try {
                s.get(30, TimeUnit.SECONDS);
            } catch (Exception cutShort) {
                // expected: the connection died with the process
            }
        }
    }

    private HttpRequest completion(int maxTokens) {
        String body = new JsonObject().put("model", model).put("stream", true).put("max_tokens", maxTokens)
                .put("messages", new JsonArray().add(new JsonObject().put("role", "user").put("content", "count"))).encode();
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + gatewayPort + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + API_KEY).header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(60)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    private HttpResponse<String> get(String path, String key) throws IOException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + gatewayPort + path))
                .timeout(Duration.ofSeconds(10));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        try {
            return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    private JsonObject account() throws IOException {
        return new JsonObject(get("/v1/account", API_KEY).body());
    }

    private long spent() {
        try {
            return account().getLong("spent_nanoton");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private boolean registered(String id) {
        try {
            JsonArray workers = new JsonObject(get("/admin/workers", ADMIN_KEY).body()).getJsonArray("workers");
            return workers.stream().map(JsonObject.class::cast)
                    .anyMatch(w -> id.equals(w.getString("id")) && Boolean.TRUE.equals(w.getBoolean("healthy")));
        } catch (IOException e) {
            return false;
        }
    }

    private JsonObject status() {
        try {
            return new JsonObject(http.send(HttpRequest.newBuilder(URI.create(workerUrl + "/status"))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private JsonObject channel() {
        JsonArray channels = status().getJsonArray("channels");
        assertThat(channels).as("one channel, kept across restarts").hasSize(1);
        return channels.getJsonObject(0);
    }

    /** Also remembers what it saw, for the failure message. */
    private boolean workerHoldsHalf() {
        long sent = sent();
        long spent = spent();
        lastSeen = "worker's state " + sent + " nanoTON, client debits " + spent + " nanoTON";
        return sent * 2 == spent;
    }

    private long sent() {
        return channel().getLong("sent_nanoton");
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("timed out waiting until " + what + "; last seen: " + lastSeen + " (logs in " + dir + ")");
    }
}
