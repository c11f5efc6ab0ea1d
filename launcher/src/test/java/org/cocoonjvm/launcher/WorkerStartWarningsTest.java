package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * What {@code cocoon worker} warns about at start: an open API off loopback, earnings kept only in
 * memory, more engine threads than CPUs.
 */
class WorkerStartWarningsTest {
    @Test
    void aWildcardHostWithoutApiKey_isWarnedAbout_namingApiKey() {
        assertThat(warnings("--host", "0.0.0.0")).singleElement().asString()
                .startsWith("--host 0.0.0.0 without --api-key: anyone").contains("give --api-key KEY");
    }

    @Test
    void aLoopbackHost_orAnApiKey_isNot() {
        assertThat(warnings()).isEmpty();
        assertThat(warnings("--host", "localhost")).isEmpty();
        assertThat(warnings("--host", "::1")).isEmpty();
        assertThat(warnings("--host", "0.0.0.0", "--api-key", "sk-x")).isEmpty();
    }

    @Test
    void aGatewayWithoutPaymentDir_isWarnedAbout_namingPaymentDir() {
        assertThat(warnings("--gateway", "127.0.0.1:1")).singleElement().asString()
                .startsWith("no --payment-dir: ").contains("a restart loses the unpaid earnings")
                .contains("give --payment-dir DIR");
        assertThat(warnings("--gateway", "127.0.0.1:1", "--payment-dir", "/tmp/x")).isEmpty();
    }

    @Test
    void moreThreadsThanCpus_isWarnedAbout_namingBoth() {
        int cpus = Runtime.getRuntime().availableProcessors();
        assertThat(warnings("--threads", String.valueOf(cpus + 1))).singleElement().asString()
                .startsWith("--threads " + (cpus + 1) + " is more than the " + cpus + " CPUs this machine has");
        assertThat(warnings("--threads", String.valueOf(cpus))).isEmpty();
        assertThat(warnings("--threads", "0")).isEmpty();
    }

    private static List<String> warnings(String... options) {
        CommandLine cli = new CommandLine(new WorkerCommand());
        cli.parseArgs(Stream.concat(Stream.of("--id", "w"), Stream.of(options))
                .toArray(String[]::new));
        return ((WorkerCommand) cli.getCommand()).startWarnings();
    }
}
