package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.server.GrpcServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
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

    @Test
    void aGatewayNobodyListensOn_couldNotBeReached_saidOnceAtWarn_thenRegisteringIsInfo_andItsLossWarned() throws Exception {
        int port = freePort();
        Future<String> deployed = vertx.deployVerticle(worker(port));
        eventually("three retries", () -> lines(Level.DEBUG).size() >= 3);

        assertThat(lines(Level.WARN)).singleElement().asString()
                .startsWith("could not reach gateway 127.0.0.1:" + port + " (")
                .contains("retrying with backoff up to 5000 ms, and logging this again only once a minute");
        assertThat(lines(Level.DEBUG)).allSatisfy(l -> assertThat(l).startsWith("could not reach gateway"));
        assertThat(events.list).noneMatch(e -> e.getFormattedMessage().contains("lost"));

        HttpServer gateway = registeringGateway(port);
        await(deployed);
        assertThat(lines(Level.INFO)).containsExactly("registered with gateway 127.0.0.1:" + port);

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
        vertx.deployVerticle(worker(gateway.actualPort()));

        eventually("asked twice", () -> sessions.size() >= 2);
        // The gateway saw the second Hello; the worker logs its second refusal a moment later.
        eventually("the second refusal logged", () -> !lines(Level.DEBUG).isEmpty());
        assertThat(TimeUnit.NANOSECONDS.toMillis(sessions.get(1) - sessions.get(0))).isGreaterThanOrEqualTo(4_500);
        assertThat(lines(Level.WARN)).singleElement().asString().contains("refused this worker (ALREADY_EXISTS)")
                .contains("worker_id_in_use").contains("retrying every 5000 ms");
        assertThat(lines(Level.DEBUG)).singleElement().asString().contains("refused this worker again (ALREADY_EXISTS)");
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
