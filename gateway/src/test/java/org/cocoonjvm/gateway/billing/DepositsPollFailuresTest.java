package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.chain.ChainClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * The deposit watcher against a toncenter API on loopback that fails for a while and then
 * answers, as its operator reads the log: one WARN when the failures start (not one a tick), and
 * INFO when polling works again (audit G, L2).
 */
class DepositsPollFailuresTest {
    private final Logger depositsLog = (Logger) LoggerFactory.getLogger(Deposits.class);
    private final ListAppender<ILoggingEvent> events = new ListAppender<>();
    private final AtomicBoolean answering = new AtomicBoolean();
    private final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    private HttpServer api;
    private Deposits deposits;
    private Level levelBefore;

    @AfterEach
    void stop() throws Exception {
        if (deposits != null) {
            deposits.close();
        }
        if (api != null) {
            api.stop(0);
        }
        depositsLog.detachAppender(events);
        depositsLog.setLevel(levelBefore);
    }

    @Test
    void failingPolls_areWarnedOnceWhenTheyStart_andTheRecoveryIsInfo() throws Exception {
        api = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        api.createContext("/", exchange -> {
            boolean ok = answering.get();
            byte[] body = (ok ? "{\"ok\":true,\"result\":[]}" : "<html>bad gateway</html>").getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(ok ? 200 : 502, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        api.start();
        levelBefore = depositsLog.getLevel();
        depositsLog.setLevel(Level.DEBUG);
        events.start();
        depositsLog.addAppender(events);

        deposits = new Deposits(new ChainClient("http://127.0.0.1:" + api.getAddress().getPort(), Duration.ofSeconds(5)),
                Address.of("0:" + "11".repeat(32)), new InMemoryAccountBook(Clock.systemUTC()), Runnable::run,
                Clock.systemUTC(), new Deposits.Options(Duration.ofMillis(20), Duration.ZERO), meters);
        eventually("five failed polls", () -> meters.get("cocoon.deposits.poll.failures").counter().count() >= 5);

        assertThat(lines(Level.WARN)).singleElement().asString()
                .startsWith("deposits: poll failed, retrying at every tick and logging this again only once a minute")
                .endsWith("answered HTTP 502 without a JSON envelope");
        assertThat(lines(Level.DEBUG)).hasSizeGreaterThanOrEqualTo(4)
                .allSatisfy(l -> assertThat(l).startsWith("deposits: poll failed again: "));

        answering.set(true);
        eventually("polling works again", () -> !lines(Level.INFO).stream().filter(l -> l.contains("works again")).toList()
                .isEmpty());
        assertThat(lines(Level.INFO).getLast()).startsWith("deposits: polling works again, after failing for ");
        assertThat(lines(Level.WARN)).hasSize(1);
    }

    private List<String> lines(Level level) {
        synchronized (events) {
            return events.list.stream().filter(e -> e.getLevel() == level).map(ILoggingEvent::getFormattedMessage).toList();
        }
    }

    private void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what + "; logged " + lines(Level.WARN) + " at WARN");
            }
            Thread.sleep(10);
        }
    }
}
