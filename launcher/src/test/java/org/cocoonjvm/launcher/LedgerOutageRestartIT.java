package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.cocoonjvm.billing.ledger.PostgresServer;
import org.cocoonjvm.gateway.billing.PendingJournal;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Audit N, N-4: {@code cocoon gateway} stopped (SIGTERM) during a ledger outage, with streams that
 * ended during it and were told their cost. Their settlements are kept in the data dir; once
 * PostgreSQL is back, the next start with the same ledger and data dir bills them as told, before
 * its recovery would have ended their reservations at their last checkpoints, and
 * {@code /v1/requests/{id}} answers for them. Each process in its own JVM, on a PostgreSQL of the
 * test's own that it stops and starts.
 */
class LedgerOutageRestartIT {
    private static final int STREAMS = 4;
    private static final long GRANT = 1_000_000_000L;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)  // the failure messages point at the logs in it
    Path dir;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final CocoonProcesses cocoon = new CocoonProcesses();
    private PostgresServer server;

    @AfterEach
    void stop() {
        cocoon.close();
        if (server != null) {
            server.stop();
        }
    }

    @Test
    void streamsToldTheirCostDuringAnOutage_areBilledAsTold_byTheStartAfterAStopDuringIt() throws Exception {
        server = PostgresServer.startOwn();
        String ledger = server.newDatabaseUrl();
        int port = freePort();
        String[] args = gatewayArgs(port, ledger);
        Process first = cocoon.start(dir.resolve("first.log"), args);
        awaitHealthy(port, first, "first.log");
        cocoon.start(dir.resolve("worker.log"), "worker", "--id", "w1", "--gateway", "127.0.0.1:" + port, "--engine",
                "synthetic", "--port", String.valueOf(freePort()), "--payment-dir", dir.resolve("worker-payments").toString());
        awaitWorker(port);

        // 25 tokens a second: 100 tokens outlive the database's stop.
        List<Stream> streams = new ArrayList<>();
        for (int i = 0; i < STREAMS; i++) {
            streams.add(new Stream(port));
        }
        eventually("every stream runs", 30, () -> streams.stream().allMatch(s -> s.chunks.get() >= 3));
        server.shutDown();
        long told = 0;
        List<String> ids = new ArrayList<>();
        for (Stream s : streams) {
            JsonObject last = s.ended.get(60, TimeUnit.SECONDS);
            assertThat(last).as("the stream's usage chunk; logs in " + dir).isNotNull();
            told += last.getJsonObject("usage").getLong("total_cost");
            ids.add(last.getString("id"));
        }
        assertThat(told).isPositive();

        first.destroy();   // SIGTERM, the ledger still down
        assertThat(first.waitFor(60, TimeUnit.SECONDS)).as("the first gateway stops; log in " + dir).isTrue();
        Path journal = dir.resolve("data").resolve(PendingJournal.FILE_NAME);
        assertThat(Files.readString(dir.resolve("first.log"))).as("its last word on them")
                .contains(STREAMS + " settlements (" + told + " nanoTON) were not taken by the ledger before the stop; they "
                        + "are kept in " + journal);
        assertThat(Files.readAllLines(journal)).hasSize(STREAMS);

        server.startAgain();
        Process second = cocoon.start(dir.resolve("second.log"), args);
        awaitHealthy(port, second, "second.log");
        JsonObject account = new JsonObject(get(port, "/v1/account").body());
        assertThat(account.getLong("spent_nanoton")).as("charged exactly what the clients were told; logs in " + dir)
                .isEqualTo(told);
        assertThat(account.getLong("reserved_nanoton")).isZero();
        assertThat(account.getLong("balance_nanoton")).isEqualTo(GRANT - told);
        for (String id : ids) {
            HttpResponse<String> lookup = get(port, "/v1/requests/" + id);
            assertThat(lookup.statusCode()).as(id + ": " + lookup.body()).isEqualTo(200);
        }
        assertThat(ids.stream().mapToLong(id -> {
            try {
                return new JsonObject(get(port, "/v1/requests/" + id).body()).getJsonObject("usage").getLong("total_cost");
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }).sum()).isEqualTo(told);
        assertThat(Files.readString(dir.resolve("second.log")))
                .contains("ledger: settled " + STREAMS + " settlements the last run kept in " + journal)
                .doesNotContain("reservations left open by the last run");
        assertThat(journal).doesNotExist();
    }

    /** A streaming chat completion read line by line: its data chunks, and its last one with usage. */
    private final class Stream {
        final AtomicInteger chunks = new AtomicInteger();
        final CompletableFuture<JsonObject> ended = new CompletableFuture<>();

        Stream(int port) {
            AtomicReference<JsonObject> usage = new AtomicReference<>();
            HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                    .header("Authorization", "Bearer sk-alice").header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"synthetic\",\"messages\":[{\"role\":\"user\","
                            + "\"content\":\"tell me about cocoon\"}],\"stream\":true,\"max_tokens\":100,"
                            + "\"stream_options\":{\"include_usage\":true}}")).build();
            http.sendAsync(request, HttpResponse.BodyHandlers.ofLines()).thenAccept(response -> {
                response.body().forEach(line -> {
                    if (line.startsWith("data: {")) {
                        chunks.incrementAndGet();
                        JsonObject chunk = new JsonObject(line.substring("data: ".length()));
                        if (chunk.getJsonObject("usage") != null) {
                            usage.set(chunk);
                        }
                    }
                });
                ended.complete(usage.get());
            }).exceptionally(e -> {
                ended.completeExceptionally(e);
                return null;
            });
        }
    }

    private String[] gatewayArgs(int port, String ledger) throws IOException {
        Path keyFile = Files.write(dir.resolve("keys"), List.of("sk-alice"));
        Path adminFile = Files.writeString(dir.resolve("admin-key"), "admin-restart\n");
        return new String[] {"gateway", "--port", String.valueOf(port), "--ledger", ledger,
                "--api-keys-file", keyFile.toString(), "--admin-key-file", adminFile.toString(),
                "--data-dir", dir.resolve("data").toString(), "--grant-nanoton", String.valueOf(GRANT)};
    }

    private void awaitWorker(int port) throws Exception {
        eventually("worker w1 registers", 30, () -> {
            HttpResponse<String> admin = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                    + "/admin/workers")).header("Authorization", "Bearer admin-restart").build(), HttpResponse.BodyHandlers.ofString());
            return admin.statusCode() == 200 && !new JsonObject(admin.body()).getJsonArray("workers").isEmpty();
        });
    }

    private void awaitHealthy(int port, Process p, String log) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (System.nanoTime() < deadline) {
            assertThat(p.isAlive()).as("the gateway runs; log in " + dir.resolve(log)).isTrue();
            try {
                if (get(port, "/health").statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the gateway did not answer within 90 s; log in " + dir.resolve(log));
    }

    private HttpResponse<String> get(int port, String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer sk-alice").build(), HttpResponse.BodyHandlers.ofString());
    }

    @FunctionalInterface
    private interface Check {
        boolean holds() throws Exception;
    }

    private void eventually(String what, int seconds, Check check) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!check.holds()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within " + seconds + " s: " + what + "; logs in " + dir);
            }
            Thread.sleep(50);
        }
    }

    /** A free port in 28000-28999, the range these tests may use. */
    private static int freePort() throws IOException {
        for (int i = 0; i < 200; i++) {
            int port = 28_000 + ThreadLocalRandom.current().nextInt(1_000);
            try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
                return s.getLocalPort();
            } catch (IOException taken) {
                // another one
            }
        }
        throw new IOException("no free port in 28000-28999");
    }
}
