package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.protocol.grpc.GatewayGrpcService;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Registered;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * A real worker's link to a gateway that is not there yet, one that registers it, and one that
 * refuses it (scripted {@code Gateway.Session} servers on loopback), as its operator reads the log.
 */
class GatewayLinkTest {
    private final Vertx vertx = Vertx.vertx();
    private final Logger linkLog = (Logger) LoggerFactory.getLogger(GatewayLink.class);
    private final ListAppender<ILoggingEvent> events = new ListAppender<>();
    private Level levelBefore;

    @BeforeEach
    void captureTheLinksLog() {
        levelBefore = linkLog.getLevel();
        linkLog.setLevel(Level.DEBUG);  // the retries in between are DEBUG: counted to know they happened
        events.start();
        linkLog.addAppender(events);
    }

    @AfterEach
    void close() {
        linkLog.detachAppender(events);
        linkLog.setLevel(levelBefore);
        await(vertx.close());
    }

    /**
     * Audit M, M-2: the start waited for the registration, and the launcher gave up after 60 s,
     * though a GPU box and its gateway come up in either order. The worker serves its port at once,
     * says where it stands in /status, and registers whenever the gateway comes.
     */
    @Test
    void aGatewayNobodyListensOn_couldNotBeReached_saidOnceAtWarn_thenRegisteringIsInfo_andItsLossWarned() throws Exception {
        int port = freePort();
        WorkerNode node = worker(port);
        Future<String> deployed = vertx.deployVerticle(node);
        eventually("three retries", () -> lines(Level.DEBUG).size() >= 3);

        await(deployed);
        assertThat(node.registered().isComplete()).isFalse();
        JsonObject connecting = status(node);
        assertThat(connecting.getString("state")).isEqualTo("connecting");
        assertThat(connecting.getJsonObject("gateway").getString("address")).isEqualTo("127.0.0.1:" + port);
        assertThat(connecting.getJsonObject("gateway").getString("state")).isEqualTo("connecting");
        assertThat(connecting.getJsonObject("gateway").getString("reason")).isEqualTo("unreachable");
        assertThat(connecting.getJsonObject("gateway").getString("message")).startsWith("could not reach gateway 127.0.0.1:"
                + port + " (");

        assertThat(lines(Level.WARN)).singleElement().asString()
                .startsWith("could not reach gateway 127.0.0.1:" + port + " (")
                .contains("retrying with backoff up to 5000 ms, and logging this again only once a minute");
        assertThat(lines(Level.DEBUG)).allSatisfy(l -> assertThat(l).startsWith("could not reach gateway"));
        assertThat(events.list).noneMatch(e -> e.getFormattedMessage().contains("lost"));

        HttpServer gateway = registeringGateway(port);
        await(node.registered());
        assertThat(lines(Level.INFO)).containsExactly("registered with gateway 127.0.0.1:" + port);
        JsonObject serving = status(node);
        assertThat(serving.getString("state")).isEqualTo("serving");
        assertThat(serving.getJsonObject("gateway").getString("state")).isEqualTo("registered");
        assertThat(serving.getJsonObject("gateway").containsKey("reason")).isFalse();

        await(gateway.close());
        eventually("the loss logged", () -> lines(Level.WARN).size() >= 2);
        assertThat(lines(Level.WARN).get(1)).startsWith("gateway session to 127.0.0.1:" + port + " lost (");
    }

    @Test
    void aRefusedWorker_asksAgainAfterTheFullBackoff_notRampingUpFrom100Ms() throws Exception {
        List<Long> sessions = new CopyOnWriteArrayList<>();
        GrpcServer grpc = GrpcServer.server(vertx);
        grpc.callHandler(GatewayGrpcService.Session, call -> call.handler(hello -> {
            sessions.add(System.nanoTime());
            call.response().statusMessage("worker_id_in_use: worker id 'linked' is in use by another worker")
                    .status(GrpcStatus.ALREADY_EXISTS).end();
        }));
        HttpServer gateway = await(vertx.createHttpServer().requestHandler(grpc).listen(0, "127.0.0.1"));
        WorkerNode node = worker(gateway.actualPort());
        vertx.deployVerticle(node);

        eventually("asked twice", () -> sessions.size() >= 2);
        // The gateway saw the second Hello; the worker logs its second refusal a moment later.
        eventually("the second refusal logged", () -> !lines(Level.DEBUG).isEmpty());
        assertThat(TimeUnit.NANOSECONDS.toMillis(sessions.get(1) - sessions.get(0))).isGreaterThanOrEqualTo(4_500);
        assertThat(lines(Level.WARN)).singleElement().asString().contains("refused this worker (ALREADY_EXISTS)")
                .contains("worker_id_in_use").contains("retrying every 5000 ms");
        assertThat(lines(Level.DEBUG)).singleElement().asString().contains("refused this worker again (ALREADY_EXISTS)");
        // It passes by itself (an old session of this id not yet seen dead): not refused for good.
        assertThat(status(node).getString("state")).isEqualTo("connecting");
        assertThat(status(node).getJsonObject("gateway").getString("reason")).isEqualTo("worker_id_in_use");
    }

    /**
     * Audit M, M-3: a worker refused for what retrying cannot fix kept running with /status
     * "serving", so a health check took it for a healthy one; it keeps retrying (its owner may fix
     * the gateway's side), and says it is refused and why.
     */
    @Test
    void aWorkerRefusedForGood_saysRefusedInStatus_withTheGatewaysReason_andKeepsRetrying() throws Exception {
        String why = "payout_address_changed: this worker's payment key has channel 5e0e, paying out to UQ… (0:ec…)";
        GrpcServer grpc = GrpcServer.server(vertx);
        grpc.callHandler(GatewayGrpcService.Session, call -> call.handler(hello ->
                call.response().statusMessage(why).status(GrpcStatus.FAILED_PRECONDITION).end()));
        HttpServer gateway = await(vertx.createHttpServer().requestHandler(grpc).listen(0, "127.0.0.1"));
        WorkerNode node = worker(gateway.actualPort());
        await(vertx.deployVerticle(node));

        eventually("the refusal logged", () -> !lines(Level.ERROR).isEmpty());
        JsonObject status = status(node);
        assertThat(status.getString("state")).isEqualTo("refused");
        JsonObject link = status.getJsonObject("gateway");
        assertThat(link.getString("state")).isEqualTo("refused");
        assertThat(link.getString("reason")).isEqualTo("payout_address_changed");
        assertThat(link.getString("message")).isEqualTo(why);
        assertThat(Instant.parse(link.getString("since"))).isBeforeOrEqualTo(Instant.now());
        assertThat(node.registered().isComplete()).isFalse();
    }

    /**
     * Audit Q, Q-6: a starting gateway's launcher holds its port, so tries are accepted and then
     * dropped for seconds on every restart; the worker blamed attestation at the first of them.
     */
    @Test
    void aHeldPortThatDropsTries_whileTheGatewayStarts_isNotBlamedOnAttestation() throws Exception {
        int port = freePort();
        WorkerNode node;
        // As the launcher's Ports holds it: bound and listening, never accepting.
        try (ServerSocket held = new ServerSocket(port, 50, InetAddress.getLoopbackAddress())) {
            node = worker(port);
            await(vertx.deployVerticle(node));
            Thread.sleep(1_500);
        }
        HttpServer gateway = registeringGateway(port);
        await(node.registered());
        assertThat(events.list).as("tries were dropped").anyMatch(e -> e.getFormattedMessage().contains("closed"));
        assertThat(events.list).noneMatch(e -> e.getFormattedMessage().contains("--attestation"));
        await(gateway.close());
    }

    @Test
    void theAttestationHint_comesOnlyOnceTriesHaveBeenDroppedLongerThanAGatewaysStart() {
        SocketAddress gateway = SocketAddress.inetSocketAddress(4001, "127.0.0.1");
        Duration longer = LinkProblems.DROPPED_BEFORE_ATTESTATION_HINT;
        Duration shorter = longer.minusMillis(1);
        assertThat(LinkProblems.unreachable(gateway, "Connection was closed", false, shorter))
                .isEqualTo("could not reach gateway 127.0.0.1:4001 (Connection was closed)");
        assertThat(LinkProblems.unreachable(gateway, "Connection was closed", false, longer))
                .startsWith("could not reach gateway 127.0.0.1:4001 (Connection was closed; dropped for over 10 s: ")
                .contains("needs --attestation", "tls_required");
        assertThat(LinkProblems.unreachable(gateway, "Connection was closed", true, shorter)).doesNotContain("attestation");
        assertThat(LinkProblems.unreachable(gateway, "Connection was closed", true, longer))
                .contains("refused this worker's attestation in the TLS handshake", "/admin/workers");
        assertThat(LinkProblems.unreachable(gateway, "Connection was closed", false, longer.plusMinutes(5)))
                .as("the same text while it lasts, so its line is said once a minute")
                .isEqualTo(LinkProblems.unreachable(gateway, "Connection was closed", false, longer));
    }

    private JsonObject status(WorkerNode node) throws Exception {
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(node.endpoint() + "/status")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(response.statusCode()).isEqualTo(200);
            return new JsonObject(response.body());
        }
    }

    private WorkerNode worker(int gatewayPort) {
        return new WorkerNode(new SyntheticEngine(1000, 4, 2048), new WorkerOptions("linked", "127.0.0.1", 0, null,
                SocketAddress.inetSocketAddress(gatewayPort, "127.0.0.1"), SchedulerOptions.DEFAULTS, 1000));
    }

    /** A gateway that registers every worker, without payments, and then only listens. */
    private HttpServer registeringGateway(int port) {
        GrpcServer grpc = GrpcServer.server(vertx);
        grpc.callHandler(GatewayGrpcService.Session, call -> call.handler(hello -> call.response().write(
                GatewayMessage.newBuilder().setRegistered(Registered.newBuilder().setHeartbeatIntervalMs(1000)).build())));
        return await(vertx.createHttpServer().requestHandler(grpc).listen(port, "127.0.0.1"));
    }

    private List<String> lines(Level level) {
        synchronized (events) {
            return events.list.stream().filter(e -> e.getLevel() == level).map(ILoggingEvent::getFormattedMessage).toList();
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what + "; the link logged " + lines(Level.WARN) + " at WARN, "
                        + lines(Level.DEBUG) + " at DEBUG");
            }
            Thread.sleep(20);
        }
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("future failed", e);
        }
    }
}
