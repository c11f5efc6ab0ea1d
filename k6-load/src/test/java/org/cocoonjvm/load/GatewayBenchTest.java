package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.cocoonjvm.protocol.transport.NetTransport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;

/** {@code bench gateway} in a tiny configuration: both paths measured, a table, valid SVG plots. */
class GatewayBenchTest {

    @Test
    void measuresBothPathsAndWritesPlots(@TempDir Path out) throws Exception {
        // The gateway on io_uring where the machine has it: the bench's --gateway-transport, end to end.
        NetTransport gateway = NetTransport.IO_URING.available() ? NetTransport.IO_URING : NetTransport.NIO;
        GatewayBench.Report report = GatewayBench.run(new GatewayBench.Options(List.of(1, 4), Duration.ofMillis(400), 1,
                1000, new GatewayBench.Replies(20, 0.5), 0, Duration.ofMillis(200), NetTransport.NIO, gateway, false));
        List<Path> files = report.writePlots(out);

        assertThat(report.rows()).hasSize(2);
        for (GatewayBench.Row row : report.rows()) {
            assertThat(row.directTtft().count()).isPositive();
            assertThat(row.gatewayTtft().count()).isPositive();
            assertThat(row.directTokensPerS()).isPositive();
            assertThat(row.gatewayTokensPerS()).isPositive();
            assertThat(row.errors()).isZero();
            assertThat(row.control()).as("not asked for").isNull();
            assertThat(row.gatewayOwn().count()).isPositive();
            // A part of each request's TTFT; the two sets of requests differ at a phase's edges, so
            // on a loaded machine their medians can cross (seen: 80.8 against 80.0 ms).
            assertThat(row.gatewayOwn().percentile(50)).isPositive().isLessThan(row.gatewayTtft().percentile(99));
            // Requests a pause caught are left out of the unpaused TTFT, and only they.
            GatewayBench.PauseShare pauses = row.pauses();
            assertThat(pauses.directOverlapped()).isBetween(0.0, 1.0);
            assertThat(pauses.gatewayOverlapped()).isBetween(0.0, 1.0);
            assertThat(pauses.directUnpaused().count())
                    .isEqualTo(Math.round(row.directTtft().count() * (1 - pauses.directOverlapped())));
            assertThat(pauses.gatewayUnpaused().count())
                    .isEqualTo(Math.round(row.gatewayTtft().count() * (1 - pauses.gatewayOverlapped())));
        }
        String table = report.table();
        assertThat(table).contains("p50 dir", "p50 gw", "tok/s gw", "ratio", "warm-up: ", "gw tok/cpu-s", "10 to 30-token replies",
                "transport nio (gateway " + gateway + ")");
        // Each concurrency has a latency row, a CPU row, a row of the gateway's own share and one of pauses.
        assertThat(table.lines().filter(l -> l.matches("\\s+[14] \\|.*"))).hasSize(8);
        assertThat(table).contains("Stop-the-world pauses", "caught gw");
        for (GatewayBench.Row row : report.rows()) {
            // The gateway's event loops did work only on the gateway path; the client's on both.
            assertThat(row.gatewayCpu().gateway()).isPositive();
            assertThat(row.directCpu().gateway()).isLessThan(row.gatewayCpu().gateway());
            assertThat(row.directCpu().client()).isPositive();
            assertThat(row.gatewayCpu().worker()).isPositive();
        }

        assertThat(files).extracting(p -> p.getFileName().toString()).containsExactly("ttft-cdf.svg", "throughput.svg", "report.json");
        for (Path svg : files.subList(0, 2)) {
            Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(svg.toFile());
            assertThat(doc.getDocumentElement().getTagName()).isEqualTo("svg");
            assertThat(doc.getElementsByTagName("polyline").getLength()).as(svg.toString()).isGreaterThanOrEqualTo(2);
        }
        assertThat(Files.readString(out.resolve("report.json"))).contains("\"added_p50_ms\"", "\"tokens_per_gateway_cpu_second\"",
                "\"jit_quiet\"", "\"gateway_own_p99_ms\"", "\"unpaused_added_p99_ms\"");
    }

    @Test
    void control_measuresAThirdPathThroughASplicingProxy() {
        GatewayBench.Report report = GatewayBench.run(new GatewayBench.Options(List.of(4), Duration.ofMillis(400), 1,
                1000, new GatewayBench.Replies(20, 0.5), 0, Duration.ofMillis(300), NetTransport.NIO, NetTransport.NIO, true));

        GatewayBench.Row row = report.rows().getFirst();
        assertThat(row.errors()).isZero();
        assertThat(row.control().ttft().count()).isPositive();
        assertThat(row.control().tokensPerS()).isPositive();
        // The proxy's event loops worked on the control path; the gateway's idled through it.
        assertThat(row.control().cpu().gateway()).isPositive();
        assertThat(row.control().cpu().worker()).isPositive();
        assertThat(report.table()).contains("Control: a byte-splicing TCP proxy", "proxy tok/cpu-s");
        assertThat(report.json().getJsonArray("rows").getJsonObject(0).getJsonObject("control").getDouble("tokens_per_s"))
                .isPositive();
    }

    /** What the command line cannot give (picocli refuses an empty --concurrency and a "-" duration), callers can. */
    @Test
    void options_anEmptyListOrANegativeWarmup_areRefused_namingTheOption() {
        assertThatThrownBy(() -> new GatewayBench.Options(List.of(), Duration.ofSeconds(1), 1,
                        1000, new GatewayBench.Replies(20, 0), 0, Duration.ZERO, NetTransport.NIO, NetTransport.NIO, false))
                .isInstanceOf(ScenarioException.class)
                .hasMessage("--concurrency must be one or more values between 1 and 4096, got []");
        assertThatThrownBy(() -> new GatewayBench.Options(List.of(1), Duration.ofSeconds(1), 1,
                        1000, new GatewayBench.Replies(20, 0), 0, Duration.ofSeconds(-1), NetTransport.NIO, NetTransport.NIO, false))
                .isInstanceOf(ScenarioException.class).hasMessage("--warmup must not be negative, got -1000ms");
    }

    @Test
    void replies_withSpread_coverTheRange_withoutIt_areEqual() {
        GatewayBench.Replies spread = new GatewayBench.Replies(100, 0.5);
        java.util.Set<Integer> lengths = new java.util.TreeSet<>();
        for (int i = 0; i < 10_000; i++) {
            lengths.add(spread.next().maxTokens());
        }
        assertThat(lengths).first().isEqualTo(50);
        assertThat(lengths).last().isEqualTo(150);
        assertThat(lengths).hasSize(101);
        assertThat(new GatewayBench.Replies(100, 0).next().maxTokens()).isEqualTo(100);
        assertThatThrownBy(() -> new GatewayBench.Replies(100, 1.0))
                .isInstanceOf(ScenarioException.class).hasMessage("--reply-spread must be at least 0 and below 1, got 1.0");
    }
}
