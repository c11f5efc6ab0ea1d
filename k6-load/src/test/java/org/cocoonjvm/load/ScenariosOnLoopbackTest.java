package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * CI's load gate: each scenario's {@code ci} profile (a few seconds) through the JVM driver against
 * a real gateway and a synthetic-engine worker on loopback, judged by the thresholds in its
 * parameter file. A regression beyond them fails the build.
 *
 * <p>One worker, not two: the disconnect storm must put more resets on one gateway-to-worker
 * connection than HTTP/2's rapid-reset guard allows by default (200 in 30 s), which closed that
 * connection and failed every stream on it until the worker raised the limit.
 */
class ScenariosOnLoopbackTest {
    private static LoopbackNetwork net;

    @BeforeAll
    static void start() throws Exception {
        // 200 tokens/s a stream: replies of 24 to 63 tokens take 0.1 to 0.3 s, so a few seconds hold many.
        net = new LoopbackNetwork(1, 200, 128, 0);
        // A second of unjudged load first, so the first scenario measured does not pay for a cold JIT.
        Scenario warmUp = Scenario.load(Path.of("scenarios", "chat-streaming.json"), new Scenario.Overrides("ci", null, Duration.ofSeconds(1)));
        new LoadDriver(net.vertx(), warmUp, net.viaGateway(), Clock.systemUTC()).run().await(60, TimeUnit.SECONDS);
    }

    @AfterAll
    static void stop() {
        net.close();
    }

    @Test
    void chatStreaming() throws Exception {
        Summary s = run("chat-streaming");
        assertThat(s.snapshot().count(Metric.COMPLETED)).isGreaterThan(10);
        assertThat(s.snapshot().trend(Metric.ITL).count()).isPositive();
    }

    @Test
    void translationBursts() throws Exception {
        Summary s = run("translation-bursts");
        assertThat(s.flows().get("translate").count(Metric.COMPLETED)).isGreaterThan(20);
        assertThat(s.flows().get("chat").count(Metric.COMPLETED)).isPositive();
    }

    @Test
    void disconnectStorm() throws Exception {
        Summary s = run("disconnect-storm");
        assertThat(s.flows().get("storm").count(Metric.ABORTED)).isGreaterThan(20);
        // Every aborted stream was cancelled on its worker too: nothing stays in flight.
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (net.inFlight() > 0 && System.nanoTime() < until) {
            Thread.sleep(50);
        }
        assertThat(net.inFlight()).as("requests left in flight after the storm").isZero();
    }

    @Test
    void soak() throws Exception {
        Summary s = run("soak");
        assertThat(s.flows().get("chat").count(Metric.COMPLETED)).isPositive();
        assertThat(s.flows().get("translate").count(Metric.COMPLETED)).isPositive();
    }

    private static Summary run(String name) throws Exception {
        Scenario scenario = Scenario.load(Path.of("scenarios", name + ".json"), new Scenario.Overrides("ci", null, null));
        Summary summary = new LoadDriver(net.vertx(), scenario, net.viaGateway(), Clock.systemUTC()).run()
                .await(scenario.duration().toSeconds() + scenario.gracefulStop().toSeconds() + 30, TimeUnit.SECONDS);
        System.err.println(summary.text());
        assertThat(summary.passed()).as("thresholds of %s:%n%s", name, summary.text()).isTrue();
        assertThat(summary.snapshot().count(Metric.REQUESTS)).isPositive();
        return summary;
    }
}
