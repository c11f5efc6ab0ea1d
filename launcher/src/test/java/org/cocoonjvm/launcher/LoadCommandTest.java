package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import org.cocoonjvm.load.LoopbackNetwork;
import org.junit.jupiter.api.Test;

/**
 * {@code cocoon load} against a target it cannot use: exit 2 (bad options, as k6-load's README
 * promises) with one line naming what failed and which option to check, not a stack trace.
 */
class LoadCommandTest {
    /** Maven runs tests from the module directory. */
    private static final String SCENARIO = "../k6-load/scenarios/chat-streaming.json";

    record Run(int exit, String err) {}

    @Test
    void aRefusedKey_isExit2_withTheGatewaysAnswer() {
        try (LoopbackNetwork net = new LoopbackNetwork(1, 200, 8, 0)) {
            Run r = load("--url", net.viaGateway().baseUrl().toString(), "--key", "sk-wrong");

            assertThat(r.exit()).as(r.err()).isEqualTo(2);
            assertThat(r.err()).isEqualTo("cocoon: GET " + net.viaGateway().baseUrl() + "/v1/models answered 401 invalid_api_key: "
                    + "Missing or invalid API key; send 'Authorization: Bearer <key>'; check --key");
        }
    }

    @Test
    void anAddressWhereNothingListens_isExit2_namingTheUrl() throws IOException {
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        Run r = load("--url", "http://127.0.0.1:" + port, "--key", LoopbackNetwork.API_KEY);

        assertThat(r.exit()).as(r.err()).isEqualTo(2);
        assertThat(r.err()).isEqualTo("cocoon: cannot connect to http://127.0.0.1:" + port + ": Connection refused; check --url");
    }

    @Test
    void aUrlThatIsNotHttp_isExit2() {
        Run r = load("--url", "https://127.0.0.1:1", "--key", LoopbackNetwork.API_KEY, "--model", "synthetic");

        assertThat(r.exit()).as(r.err()).isEqualTo(2);
        assertThat(r.err()).isEqualTo("cocoon: the target URL must be http://host[:port], got https://127.0.0.1:1");
    }

    private static Run load(String... target) {
        StringWriter err = new StringWriter();
        var cli = Cocoon.commandLine();
        cli.setErr(new PrintWriter(err, true));
        List<String> args = new ArrayList<>(List.of("load", "--scenario", SCENARIO, "--profile", "ci"));
        args.addAll(List.of(target));
        int exit = cli.execute(args.toArray(String[]::new));
        return new Run(exit, err.toString().strip());
    }
}
