package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.ledger.PostgresServer;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cocoon gateway} started as operators start it, each in its own JVM: what a start that
 * cannot serve does to a running gateway and how it says why, which account a key reaches
 * after the keys change, and what a restart keeps.
 */
class GatewayStartIT {
    @TempDir(cleanup = CleanupMode.ON_SUCCESS)  // the failure messages point at the logs in it
    Path dir;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final CocoonProcesses cocoon = new CocoonProcesses();

    @AfterEach
    void killLeftovers() {
        cocoon.close();
    }

    @Test
    void aSecondStartOnABusyPort_failsInOneLine_andTheRunningGatewayKeepsItsLease() throws Exception {
        int port = freePort();
        String[] gateway = gatewayArgs(port, PostgresServer.shared().newDatabaseUrl(), "sk-alice");
        Process running = launch("running.log", gateway);
        awaitHealthy(port, running);

        // Its own data dir: one the running gateway holds is refused before the ports are tried (DirLockTest).
        String[] elsewhere = gateway.clone();
        elsewhere[Arrays.asList(gateway).indexOf("--data-dir") + 1] = dir.resolve("data-second").toString();
        Process second = launch("second.log", elsewhere);
        assertThat(second.waitFor(60, TimeUnit.SECONDS)).as("the second start gives up").isTrue();
        // The running gateway would learn of a lost lease at its next renewal, every 5 s, and exit 75.
        Thread.sleep(7_000);
        assertThat(running.isAlive()).as("the running gateway still runs; log in " + dir).isTrue();
        assertThat(get(port, "/v1/account", "sk-alice").statusCode()).isEqualTo(200);
        assertThat(second.exitValue()).isEqualTo(1);
        assertOneLine("second.log", "cocoon: port " + port + " on 127.0.0.1 is in use");
    }

    /**
     * Audit N-3: a second process with a live gateway's --gateway-id (another port) took its lease,
     * ended its running requests and made it exit 75. Refused now, in one line naming the holder;
     * --take-over fences it deliberately; a restart on this host after a kill takes the lease at
     * once, and after a clean stop too.
     */
    @Test
    void aStartWithALiveGatewaysId_isRefused_unlessItTakesOver_andARestartAfterAKillIsNotHeldUp() throws Exception {
        String ledger = PostgresServer.shared().newDatabaseUrl();
        int port = freePort();
        Process live = launch("live.log", withId(gatewayArgs(port, ledger, "sk-alice"), "data-live"));
        awaitHealthy(port, live);

        int otherPort = freePort();
        Process second = launch("second.log", withId(gatewayArgs(otherPort, ledger, "sk-alice"), "data-second"));
        assertThat(second.waitFor(60, TimeUnit.SECONDS)).as("the second start gives up").isTrue();
        assertThat(second.exitValue()).isEqualTo(1);
        assertOneLine("second.log", "cocoon: --gateway-id gw-a is in use: its lease was renewed ");
        assertThat(Files.readString(dir.resolve("second.log"))).contains("by pid " + live.pid() + " on ",
                "Stop that gateway", "for its lease to expire", "another --gateway-id", "--take-over");
        Thread.sleep(6_000);   // a fenced gateway learns it at its next renewal, every 5 s
        assertThat(live.isAlive()).as("the live gateway still runs; log in " + dir).isTrue();
        assertThat(get(port, "/v1/account", "sk-alice").statusCode()).isEqualTo(200);

        Process takingOver = launch("take-over.log", withId(gatewayArgs(otherPort, ledger, "sk-alice"), "data-second",
                "--take-over"));
        awaitHealthy(otherPort, takingOver);
        assertThat(live.waitFor(30, TimeUnit.SECONDS)).as("the fenced gateway stops").isTrue();
        assertThat(live.exitValue()).isEqualTo(GatewayLedger.EXIT_LEASE_LOST);
        assertThat(Files.readString(dir.resolve("take-over.log"))).contains("--take-over: took gateway gw-a's lease (epoch 2)",
                "pid " + live.pid() + " on ");

        takingOver.destroyForcibly();   // a crash: no clean stop releases the lease
        assertThat(takingOver.waitFor(30, TimeUnit.SECONDS)).isTrue();
        Process restarted = launch("restarted.log", withId(gatewayArgs(port, ledger, "sk-alice"), "data-live"));
        awaitHealthy(port, restarted);
        assertThat(Files.readString(dir.resolve("restarted.log")))
                .contains("took gateway gw-a's lease (epoch 3); its previous holder: epoch 2, pid " + takingOver.pid(),
                        "which no longer runs");

        restarted.destroy();   // SIGTERM: a clean stop releases it
        assertThat(restarted.waitFor(30, TimeUnit.SECONDS)).isTrue();
        Process afterStop = launch("after-stop.log", withId(gatewayArgs(port, ledger, "sk-alice"), "data-live"));
        awaitHealthy(port, afterStop);
        assertThat(Files.readString(dir.resolve("after-stop.log"))).contains("epoch 3, pid " + restarted.pid(),
                "which stopped cleanly");
    }

    /**
     * Audit Q-8: a restart begun while the previous process still drained (SIGTERM'd, its port open
     * for --drain-seconds) was refused with advice to wait 900 s for the lease's expiry or to fence
     * it. It waits for the release now, saying so in one line, then takes the lease and serves.
     */
    @Test
    void aRestartWhileThePreviousGatewayDrains_waitsForItsRelease() throws Exception {
        String ledger = PostgresServer.shared().newDatabaseUrl();
        int port = freePort();
        Process old = launch("old.log", withId(gatewayArgs(port, ledger, "sk-alice"), "data-old", "--drain-seconds", "4"));
        awaitHealthy(port, old);
        old.destroy();   // SIGTERM: /ready answers 503 for the drain, then the port closes and the lease is released
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (get(port, "/ready", null).statusCode() != 503) {
            assertThat(System.nanoTime()).as("draining; log in " + dir).isLessThan(deadline);
            Thread.sleep(50);
        }

        int nextPort = freePort();
        Process next = launch("next.log", withId(gatewayArgs(nextPort, ledger, "sk-alice"), "data-next"));
        awaitHealthy(nextPort, next);

        assertThat(old.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(Files.readString(dir.resolve("next.log"))).contains(
                "waiting up to ", " s for the stopping gateway gw-a (pid " + old.pid() + " on ", "to release its lease",
                "took gateway gw-a's lease (epoch 2); its previous holder: epoch 1, pid " + old.pid(), "which stopped cleanly");
    }

    /**
     * Review U, U-2: a gateway container restarted in place after a crash gets a new PID namespace
     * (stood for here by rewriting the one its holder recorded), and its start judged the dead holder
     * alive and waited for the expiry. Its data dir tells: the restart on it takes the lease at once;
     * a start on another data dir is refused, naming the namespace that hides the holder's pid.
     */
    @Test
    void aCrashedGatewayRestartedInANewPidNamespace_onItsDataDir_takesTheLeaseAtOnce() throws Exception {
        String ledger = PostgresServer.shared().newDatabaseUrl();
        int port = freePort();
        Process crashed = launch("crashed.log", withId(gatewayArgs(port, ledger, "sk-alice"), "data-pod"));
        awaitHealthy(port, crashed);
        crashed.destroyForcibly();
        assertThat(crashed.waitFor(30, TimeUnit.SECONDS)).isTrue();
        try (java.sql.Connection c = java.sql.DriverManager.getConnection(ledger);
             java.sql.Statement st = c.createStatement()) {
            assertThat(st.executeUpdate("UPDATE gateway_leases SET holder_pid_namespace = 'pid:[1]' WHERE gateway_id = 'gw-a'"))
                    .isEqualTo(1);
        }

        Process fresh = launch("fresh.log", withId(gatewayArgs(port, ledger, "sk-alice"), "data-fresh"));
        assertThat(fresh.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(fresh.exitValue()).isEqualTo(1);
        assertOneLine("fresh.log", "cocoon: --gateway-id gw-a is in use: its lease was renewed ");
        assertThat(Files.readString(dir.resolve("fresh.log"))).contains("by pid " + crashed.pid() + " on ",
                " in PID namespace pid:[1] (its pid is of another PID namespace than this process's");

        Process restarted = launch("restarted.log", withId(gatewayArgs(port, ledger, "sk-alice"), "data-pod"));
        awaitHealthy(port, restarted);
        assertThat(Files.readString(dir.resolve("restarted.log"))).contains("took gateway gw-a's lease (epoch 2); its "
                + "previous holder: epoch 1, pid " + crashed.pid(), "in PID namespace pid:[1], which no longer runs");
    }

    private String[] withId(String[] gateway, String dataDir, String... more) {
        List<String> args = new java.util.ArrayList<>(Arrays.asList(gateway));
        args.set(args.indexOf("--data-dir") + 1, dir.resolve(dataDir).toString());
        args.addAll(List.of("--gateway-id", "gw-a"));
        args.addAll(List.of(more));
        return args.toArray(String[]::new);
    }

    @Test
    void aWorkerOnABusyPort_failsInOneLine() throws Exception {
        try (ServerSocket busy = new ServerSocket(0)) {
            Process worker = launch("worker.log", "worker", "--id", "w1", "--engine", "synthetic",
                    "--port", String.valueOf(busy.getLocalPort()));
            assertThat(worker.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(worker.exitValue()).isEqualTo(1);
            assertOneLine("worker.log", "cocoon: port " + busy.getLocalPort() + " on 127.0.0.1 is in use");
        }
    }

    @Test
    void anUnreachableLedger_andAPortOutOfRange_failInOneLine() throws Exception {
        String nowhere = "jdbc:postgresql://127.0.0.1:" + freePort() + "/ledger?user=cocoon";
        Process unreachable = launch("ledger.log", gatewayArgs(freePort(), nowhere, "sk-alice"));
        assertThat(unreachable.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(unreachable.exitValue()).isEqualTo(1);
        assertOneLine("ledger.log", "cocoon: ledger connect to jdbc:postgresql://127.0.0.1:");

        Process outOfRange = launch("port.log", gatewayArgs(99999, nowhere, "sk-alice"));
        assertThat(outOfRange.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(outOfRange.exitValue()).isEqualTo(2);
        assertOneLine("port.log", "cocoon: --port must be between 0 and 65535, got 99999");
    }

    @Test
    void aRevokedKey_leavesTheOtherKeysAccountWhereItWas() throws Exception {
        int port = freePort();
        String ledger = "jdbc:h2:file:" + dir.resolve("ledger");
        Process both = launch("both.log", gatewayArgs(port, ledger, "sk-alice", "sk-bob"));
        awaitHealthy(port, both);
        String alices = depositComment(port, "sk-alice");
        String bobs = depositComment(port, "sk-bob");
        assertThat(alices).isNotEqualTo(bobs);
        both.destroy();
        assertThat(both.waitFor(30, TimeUnit.SECONDS)).isTrue();

        Process bobAlone = launch("bob.log", gatewayArgs(port, ledger, "sk-bob"));
        awaitHealthy(port, bobAlone);
        assertThat(depositComment(port, "sk-bob")).as("bob's own account, not the first key's").isEqualTo(bobs);
        assertThat(get(port, "/v1/account", "sk-alice").statusCode()).as("alice revoked").isEqualTo(401);
    }

    /**
     * Keys come and go without a restart: {@code cocoon key new --append-to} adds one to the running
     * gateway's keys file (as its digest), and a key taken out of the file is refused from then on.
     */
    @Test
    void aKeyAddedWithKeyNew_andAKeyRevoked_takeEffectWithoutARestart() throws Exception {
        int port = freePort();
        String[] args = gatewayArgs(port, "jdbc:h2:file:" + dir.resolve("ledger"), "sk-alice");
        Process gateway = launch("gateway.log", args);
        // Its ready line, as demo and worker print one: a script needs no /health polling (audit M, M-10).
        String ready = new java.io.BufferedReader(new java.io.InputStreamReader(gateway.getInputStream())).readLine();
        assertThat(new JsonObject(ready).getMap()).containsEntry("event", "ready")
                .containsEntry("gateway", "http://127.0.0.1:" + port).containsEntry("attestation", "none");
        assertThat(get(port, "/health", null).statusCode()).isEqualTo(200);
        assertThat(Files.readString(dir.resolve("gateway.log"))).as("a gateway that no top-up can fund says so")
                .contains("this gateway does not watch deposits (no --ton-api) and shows its clients no deposit address",
                        "requests are refused 402 insufficient_balance");
        assertThat(new JsonObject(get(port, "/v1/account", "sk-alice").body()).getValue("deposit_address"))
                .as("no address to pay into that nobody watches").isNull();
        Path keysFile = Path.of(args[Arrays.asList(args).indexOf("--api-keys-file") + 1]);

        Process keyNew = launch("key-new.log", "key", "new", "--append-to", keysFile.toString(), "--rpm", "600");
        String key = new String(keyNew.getInputStream().readAllBytes()).strip();
        assertThat(keyNew.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(keyNew.exitValue()).as(Files.readString(dir.resolve("key-new.log"))).isZero();
        assertThat(key).startsWith("sk-cocoon-");
        assertThat(Files.readString(keysFile)).as("the file holds the key's digest, not the key")
                .doesNotContain(key).contains("sha256:", "rpm=600");
        awaitStatus(port, key, 200);

        Files.write(keysFile, Files.readAllLines(keysFile).stream().filter(l -> !l.equals("sk-alice")).toList());
        awaitStatus(port, "sk-alice", 401);
        assertThat(get(port, "/v1/account", key).statusCode()).isEqualTo(200);
        assertThat(Files.readString(dir.resolve("gateway.log"))).contains("removed [key-" + BearerKeys.hash("sk-alice")
                .substring(0, 16) + "]").doesNotContain(key);
    }

    /**
     * An operator's cordon is kept in the data dir: a worker taken out of routing stays out after
     * the gateway restarts and the worker registers again; a cordons file that does not read stops
     * the start in one line rather than routing to the workers it names.
     */
    @Test
    void aCordon_outlivesARestart_andACordonsFileThatDoesNotRead_stopsTheStart() throws Exception {
        int port = freePort();
        String[] args = grantedGatewayArgs(port);
        Process gateway = launch("gateway.log", args);
        awaitHealthy(port, gateway);
        launch("worker.log", "worker", "--id", "w1", "--gateway", "127.0.0.1:" + port, "--engine", "synthetic",
                "--payment-dir", dir.resolve("worker-payments").toString());
        awaitWorker(port, "w1");
        HttpResponse<String> cordoned = post(port, "/admin/workers/w1/cordon");
        assertThat(cordoned.statusCode()).as(cordoned.body()).isEqualTo(200);
        assertThat(new JsonObject(cordoned.body()).getBoolean("changed")).isTrue();
        gateway.destroy();
        assertThat(gateway.waitFor(30, TimeUnit.SECONDS)).isTrue();

        Process restarted = launch("restarted.log", args);
        awaitHealthy(port, restarted);
        JsonObject w1 = awaitWorker(port, "w1");
        assertThat(w1.getBoolean("cordoned")).as("the cordon outlived the restart").isTrue();
        HttpResponse<String> refused = completion(port, "synthetic");
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
        assertThat(refused.body()).contains("taken out of service by the gateway's operator");
        restarted.destroy();
        assertThat(restarted.waitFor(30, TimeUnit.SECONDS)).isTrue();

        Files.writeString(dir.resolve("data").resolve("cordons.json"), "[\"w1\"");
        Process unreadable = launch("unreadable.log", args);
        assertThat(unreadable.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(unreadable.exitValue()).isEqualTo(1);
        assertOneLine("unreadable.log", "cocoon: the cordoned workers in " + dir.resolve("data").resolve("cordons.json")
                + " do not read");
    }

    /**
     * A restarted gateway knows the models served before its stop ({@code models.json} in the data
     * dir): until their workers are back, a request for one is 503 {@code no_capacity} with
     * {@code Retry-After}, not the 404 the OpenAI SDKs take as final, and {@code /v1/models} keeps
     * its {@code created}; a model never served is 404 still (audit Q, Q-3).
     */
    @Test
    void aModelServedBeforeARestart_is503UntilItsWorkerIsBack_notUnknown() throws Exception {
        int port = freePort();
        String[] args = grantedGatewayArgs(port);
        Process gateway = launch("gateway.log", args);
        awaitHealthy(port, gateway);
        Process worker = launch("worker.log", "worker", "--id", "w1", "--gateway", "127.0.0.1:" + port, "--engine", "synthetic",
                "--payment-dir", dir.resolve("worker-payments").toString());
        awaitWorker(port, "w1");
        long created = createdOf(port, "synthetic");
        worker.destroy();
        assertThat(worker.waitFor(30, TimeUnit.SECONDS)).isTrue();
        gateway.destroy();
        assertThat(gateway.waitFor(30, TimeUnit.SECONDS)).isTrue();

        Process restarted = launch("restarted.log", args);
        awaitHealthy(port, restarted);
        HttpResponse<String> served = completion(port, "synthetic");
        assertThat(served.statusCode()).as(served.body()).isEqualTo(503);
        assertThat(new JsonObject(served.body()).getJsonObject("error").getString("code")).isEqualTo("no_capacity");
        assertThat(served.headers().firstValue("Retry-After")).hasValue("5");
        assertThat(createdOf(port, "synthetic")).as("created outlived the restart").isEqualTo(created);
        HttpResponse<String> unknown = completion(port, "never-served");
        assertThat(unknown.statusCode()).as(unknown.body()).isEqualTo(404);
        assertThat(new JsonObject(unknown.body()).getJsonObject("error").getString("code")).isEqualTo("model_not_found");
    }

    /** {@code created} of {@code model} in {@code /v1/models}. */
    private long createdOf(int port, String model) throws Exception {
        HttpResponse<String> models = get(port, "/v1/models", "sk-alice");
        assertThat(models.statusCode()).as(models.body()).isEqualTo(200);
        return new JsonObject(models.body()).getJsonArray("data").stream().map(JsonObject.class::cast)
                .filter(m -> m.getString("id").equals(model)).findFirst().orElseThrow().getLong("created");
    }

    /** A two-token completion of {@code model} for sk-alice. */
    private HttpResponse<String> completion(int port, String model) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                .timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer sk-alice")
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"" + model + "\",\"prompt\":\"hi\",\"max_tokens\":2}"))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The worker's row in /admin/workers, once it is registered (within 30 s). */
    private JsonObject awaitWorker(int port, String id) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        do {
            HttpResponse<String> admin = get(port, "/admin/workers", "admin-start");
            if (admin.statusCode() == 200) {
                for (Object row : new JsonObject(admin.body()).getJsonArray("workers")) {
                    if (((JsonObject) row).getString("id").equals(id)) {
                        return (JsonObject) row;
                    }
                }
            }
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        throw new AssertionError("worker " + id + " did not register within 30 s; logs in " + dir);
    }

    private HttpResponse<String> post(int port, String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer admin-start").POST(HttpRequest.BodyPublishers.noBody()).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** {@code GET /v1/account} with {@code key} answers {@code status} within 10 s (the file is checked every 2). */
    private void awaitStatus(int port, String key, int status) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        int last;
        do {
            last = get(port, "/v1/account", key).statusCode();
            if (last == status) {
                return;
            }
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        throw new AssertionError("GET /v1/account answered " + last + ", not " + status + ", 10 s on; log in " + dir);
    }

    /** Keys and the admin key in files, as an operator keeps them off the command line. */
    private String[] gatewayArgs(int port, String ledger, String... keys) throws IOException {
        Path keyFile = Files.write(dir.resolve("keys-" + String.join("-", keys)), List.of(keys));
        Path adminFile = Files.writeString(dir.resolve("admin-key"), "admin-start\n");
        return new String[] {"gateway", "--port", String.valueOf(port), "--ledger", ledger,
                "--api-keys-file", keyFile.toString(), "--admin-key-file", adminFile.toString(),
                "--data-dir", dir.resolve("data").toString()};
    }

    /** A gateway on an H2 ledger in the test's dir whose sk-alice has a grant to pay for requests with. */
    private String[] grantedGatewayArgs(int port) throws IOException {
        List<String> withGrant = new java.util.ArrayList<>(List.of(gatewayArgs(port, "jdbc:h2:file:" + dir.resolve("ledger"),
                "sk-alice")));
        withGrant.addAll(List.of("--grant-nanoton", "1000000000"));
        return withGrant.toArray(String[]::new);
    }

    private Process launch(String log, String... args) throws IOException {
        return cocoon.start(dir.resolve(log), args);
    }

    /** The process said why in one line of its own, without a stack trace. */
    private void assertOneLine(String log, String start) throws IOException {
        List<String> lines = Files.readAllLines(dir.resolve(log));
        assertThat(lines.stream().filter(l -> l.startsWith("cocoon:"))).as(log).singleElement()
                .satisfies(line -> assertThat(line).startsWith(start));
        assertThat(lines).as(log).noneMatch(l -> l.startsWith("\tat ") || l.startsWith("Caused by:"));
    }

    private void awaitHealthy(int port, Process p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            assertThat(p.isAlive()).as("the gateway runs; log in " + dir).isTrue();
            try {
                if (get(port, "/health", null).statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the gateway did not answer within 60 s; log in " + dir);
    }

    private String depositComment(int port, String key) throws Exception {
        HttpResponse<String> account = get(port, "/v1/account", key);
        assertThat(account.statusCode()).as(account.body()).isEqualTo(200);
        return new JsonObject(account.body()).getString("deposit_comment");
    }

    private HttpResponse<String> get(int port, String path, String key) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(10));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
