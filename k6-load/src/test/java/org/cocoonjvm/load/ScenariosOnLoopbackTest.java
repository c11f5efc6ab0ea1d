package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * CI's load gate: each scenario's {@code ci} profile (a few seconds) through the JVM driver against
 * a real gateway and two synthetic-engine workers on loopback, judged by the thresholds in its
 * parameter file. A regression beyond them fails the build.
 */
class ScenariosOnLoopbackTest {
    private static LoopbackNetwork net;

    @BeforeAll
    static void start() {
        // 200 tokens/s a stream: replies of 24 to 63 tokens take 0.1 to 0.3 s, so a few seconds hold many.
        net = new LoopbackNetwork(2, 200, 64, 0);
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
