package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.cocoonjvm.load.LoopbackNetwork;
import org.cocoonjvm.load.Scenario;
import org.junit.jupiter.api.Test;
import sun.misc.Signal;

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
        assertThat(r.err()).isEqualTo("cocoon: --url must be plain http://host[:port], got 'https://127.0.0.1:1'; "
                + "for an RA-TLS gateway, name the port of ./cocoon attest proxy (k6-load/README.md)");
    }

    /** No scheme, or no URL at all: one line naming --url, not picocli's URISyntaxException (audit P, P-9). */
    @Test
    void aUrlWithoutItsScheme_isExit2_namingTheOption() {
        for (String url : List.of("127.0.0.1:29200", "localhost", "http://", "http://exa mple:1", "ftp://127.0.0.1:1")) {
            Run r = load("--url", url, "--key", LoopbackNetwork.API_KEY, "--model", "synthetic");

            assertThat(r.exit()).as(r.err()).isEqualTo(2);
            assertThat(r.err()).isEqualTo("cocoon: --url must be an http:// URL (http://host[:port]), got '" + url + "'");
        }
        Run query = load("--url", "http://127.0.0.1:1/?x=1", "--key", LoopbackNetwork.API_KEY, "--model", "synthetic");
        assertThat(query.exit()).isEqualTo(2);
        assertThat(query.err()).startsWith("cocoon: --url must be a base URL, http://host[:port], without user, ?query or #fragment");
    }

    /**
     * The OpenAI SDKs' base URL (…/v1, as the root README gives it) names the same target: the probe
     * asks /v1/models, not /v1/v1/models (audit P, P-9); so does a trailing slash.
     */
    @Test
    void aUrlEndingInV1_namesTheSameTarget() {
        try (LoopbackNetwork net = new LoopbackNetwork(1, 200, 8, 0)) {
            String base = net.viaGateway().baseUrl().toString();
            for (String url : List.of(base + "/v1", base + "/v1/", base + "/")) {
                Run r = load("--url", url, "--key", "sk-wrong");

                assertThat(r.exit()).as(r.err()).isEqualTo(2);
                assertThat(r.err()).as(url).startsWith("cocoon: GET " + base + "/v1/models answered 401 invalid_api_key: ");
            }
        }
    }

    /**
     * A --json path that cannot be written is a usage error before anything starts (exit 2, before
     * the target is even asked), not exit 1 after the whole run (audit P, P-2).
     */
    @Test
    void aJsonPathThatCannotBeWritten_isExit2_beforeTheRun() throws IOException {
        Path dir = Files.createTempDirectory("load-json");
        try {
            Path file = Files.writeString(dir.resolve("a-file"), "x");
            // Nothing listens at port 1: were the run to start, the line would be about connecting.
            String[] target = {"--url", "http://127.0.0.1:1", "--key", LoopbackNetwork.API_KEY};

            Run missing = load(cat(target, "--json", "/nonexistent/dir/x.json"));
            assertThat(missing.exit()).as(missing.err()).isEqualTo(2);
            assertThat(missing.err()).isEqualTo("cocoon: --json /nonexistent/dir/x.json cannot be written: no such directory /nonexistent/dir");

            Run underAFile = load(cat(target, "--json", file.resolve("x.json").toString()));
            assertThat(underAFile.exit()).isEqualTo(2);
            assertThat(underAFile.err()).isEqualTo("cocoon: --json " + file.resolve("x.json") + " cannot be written: " + file
                    + " is not a directory");

            Run aDirectory = load(cat(target, "--json", dir.toString()));
            assertThat(aDirectory.exit()).isEqualTo(2);
            assertThat(aDirectory.err()).isEqualTo("cocoon: --json " + dir + " is a directory; name a file");

            // A writable path passes the check and is left as it was: the run then fails where it would have.
            Path fresh = dir.resolve("summary.json");
            Run passes = load(cat(target, "--json", fresh.toString()));
            assertThat(passes.err()).startsWith("cocoon: cannot connect to http://127.0.0.1:1");
            assertThat(fresh).doesNotExist();
            Run existing = load(cat(target, "--json", file.toString()));
            assertThat(existing.err()).startsWith("cocoon: cannot connect to http://127.0.0.1:1");
            assertThat(Files.readString(file)).isEqualTo("x");
        } finally {
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    @Test
    void aFieldOfTheWrongType_isExit2_inOneLine() throws IOException {
        Path bad = Files.createTempFile("scenario", ".json");
        try {
            Files.writeString(bad, Files.readString(Path.of(SCENARIO)).replace("\"stream\": true", "\"stream\": \"yes\""));
            StringWriter err = new StringWriter();
            var cli = Cocoon.commandLine();
            cli.setErr(new PrintWriter(err, true));
            int exit = cli.execute("load", "--scenario", bad.toString(), "--key", "k", "--model", "m", "--url", "http://127.0.0.1:1");

            assertThat(exit).as(err.toString()).isEqualTo(2);
            assertThat(err.toString().strip())
                    .isEqualTo("cocoon: " + bad + " flows.chat.request: 'stream' must be true or false, got \"yes\" (a string)");
        } finally {
            Files.deleteIfExists(bad);
        }
    }

    /**
     * The --json folder is removed while the run goes on: the summary is printed, the exit code is
     * the run's (0, not 1), and the JSON is kept in the temporary folder, named on stderr (audit P, P-2).
     */
    @Test
    void aJsonWriteThatFailsAtTheEnd_keepsTheRunsExitCode_andTheJson() throws Exception {
        Path dir = Files.createTempDirectory("load-json");
        Path json = dir.resolve("summary.json");
        try (LoopbackNetwork net = new LoopbackNetwork(1, 200, 32, 0)) {
            RunningLoad run = RunningLoad.start(net, json, "--warmup", "1s", "--duration", "2s");
            StringWriter out = run.out();
            StringWriter err = run.err();
            CompletableFuture<Integer> exit = run.exit();
            run.awaitErr("warm-up: ", 30);
            assertThat(err.toString()).as("the warm-up ended, the measured run begins").contains("warm-up: ");
            Files.delete(dir);

            assertThat(exit.get(60, TimeUnit.SECONDS)).as(err.toString()).isZero();
            assertThat(out.toString()).contains("requests");
            Matcher kept = Pattern.compile("cocoon: --json " + Pattern.quote(json.toString())
                    + " could not be written \\(no such file or directory [^)]*\\); it is in (\\S+) instead").matcher(err.toString());
            assertThat(kept.find()).as(err.toString()).isTrue();
            Path copy = Path.of(kept.group(1));
            try {
                assertThat(new JsonObject(Files.readString(copy)).getJsonObject("metrics").getJsonObject("requests").getLong("count"))
                        .isPositive();
            } finally {
                Files.deleteIfExists(copy);
            }
        } finally {
            Files.deleteIfExists(json);
            Files.deleteIfExists(dir);
        }
    }

    /** --series-interval sets the summary's time series, at least 100ms, before anything starts; the JSON has one entry per interval. */
    @Test
    void aSeriesInterval_cutsTheJsonsSeries_andAShortOneIsExit2() throws Exception {
        Run tooShort = load("--url", "http://127.0.0.1:1", "--key", LoopbackNetwork.API_KEY, "--series-interval", "50ms");
        assertThat(tooShort.exit()).isEqualTo(2);
        assertThat(tooShort.err()).isEqualTo("cocoon: --series-interval must be at least 100ms, got 50ms");
        Run notADuration = load("--url", "http://127.0.0.1:1", "--key", LoopbackNetwork.API_KEY, "--series-interval", "5");
        assertThat(notADuration.exit()).isEqualTo(2);
        assertThat(notADuration.err()).startsWith("cocoon: --series-interval: '5' is not a k6 duration");

        Path json = Files.createTempFile("load", ".json");
        try (LoopbackNetwork net = new LoopbackNetwork(1, 200, 32, 0)) {
            RunningLoad run = RunningLoad.start(net, json, "--duration", "2s", "--series-interval", "500ms");
            assertThat(run.exit().get(60, TimeUnit.SECONDS)).as(run.err().toString()).isZero();

            JsonObject summary = new JsonObject(Files.readString(json));
            JsonObject series = summary.getJsonObject("series");
            assertThat(series.getDouble("interval_s")).isEqualTo(0.5);
            assertThat(series.getJsonArray("intervals")).hasSize((int) Math.ceil(summary.getDouble("duration_s") / 0.5));
            long requests = series.getJsonArray("intervals").stream().mapToLong(i -> ((JsonObject) i).getLong("requests")).sum();
            assertThat(requests).isEqualTo(summary.getJsonObject("metrics").getJsonObject("requests").getLong("count")).isPositive();
            assertThat(run.out().toString()).contains("every 500ms");
        } finally {
            Files.deleteIfExists(json);
        }
    }

    /** The warm-up's requests reach the target but not the summary: the measured run is the scenario's own arrivals. */
    @Test
    void aWarmUp_runsFirst_andIsNotCounted() throws Exception {
        Path json = Files.createTempFile("load", ".json");
        try (LoopbackNetwork net = new LoopbackNetwork(1, 200, 32, 0)) {
            StringWriter err = new StringWriter();
            var cli = Cocoon.commandLine();
            cli.setOut(new PrintWriter(new StringWriter(), true));
            cli.setErr(new PrintWriter(err, true));
            int exit = cli.execute("load", "--scenario", SCENARIO, "--profile", "ci", "--duration", "1s", "--warmup", "2s",
                    "--url", net.viaGateway().baseUrl().toString(), "--key", LoopbackNetwork.API_KEY, "--model", net.viaGateway().model(),
                    "--json", json.toString());

            assertThat(exit).as(err.toString()).isZero();
            Matcher warm = Pattern.compile("warm-up: (\\d+) requests in [\\d.]+ s, not counted").matcher(err.toString());
            assertThat(warm.find()).as(err.toString()).isTrue();
            Scenario measured = Scenario.load(Path.of(SCENARIO), new Scenario.Overrides("ci", null, Duration.ofSeconds(1)));
            long arrivals = (long) Math.floor(measured.flows().getFirst().arrivalsBy(1.0));
            assertThat(Long.parseLong(warm.group(1))).isGreaterThan(arrivals);
            assertThat(new JsonObject(Files.readString(json)).getJsonObject("metrics").getJsonObject("requests").getLong("count"))
                    .isEqualTo(arrivals);
        } finally {
            Files.deleteIfExists(json);
        }
    }

    /** What an operator pressing Ctrl-C in a long run gets: progress while it ran, then its summary and JSON, exit 105. */
    @Test
    void sigint_endsTheRunWithItsSummaryAndJson_exit105() throws Exception {
        Path json = Files.createTempFile("load", ".json");
        try (LoopbackNetwork net = new LoopbackNetwork(1, 200, 32, 0)) {
            RunningLoad run = RunningLoad.start(net, json, "--duration", "2m");
            StringWriter out = run.out();
            StringWriter err = run.err();
            CompletableFuture<Integer> exit = run.exit();
            run.awaitErr("chat-streaming: ", 20);
            assertThat(err.toString()).as("a progress line on stderr").containsPattern("chat-streaming: \\d+ s of 120 s, \\d+ started, \\d+ completed, ");

            Signal.raise(new Signal("INT"));

            assertThat(exit.get(20, TimeUnit.SECONDS)).as(err.toString()).isEqualTo(105);
            assertThat(out.toString()).contains("INTERRUPTED before its end").contains("requests");
            JsonObject summary = new JsonObject(Files.readString(json));
            assertThat(summary.getString("ended")).isEqualTo("interrupted");
            assertThat(summary.getJsonObject("metrics").getJsonObject("requests").getLong("count")).isPositive();
            assertThat(summary.getDouble("duration_s")).isLessThan(60);
        } finally {
            Files.deleteIfExists(json);
        }
    }

    /** A {@code cocoon load} of the CI profile against {@code net}'s gateway, on a thread of its own, read while it runs. */
    private record RunningLoad(StringWriter out, StringWriter err, CompletableFuture<Integer> exit) {
        static RunningLoad start(LoopbackNetwork net, Path json, String... options) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            var cli = Cocoon.commandLine();
            cli.setOut(new PrintWriter(out, true));
            cli.setErr(new PrintWriter(err, true));
            String[] args = cat(new String[] {"load", "--scenario", SCENARIO, "--profile", "ci",
                    "--url", net.viaGateway().baseUrl().toString(), "--key", LoopbackNetwork.API_KEY,
                    "--model", net.viaGateway().model(), "--json", json.toString()}, options);
            return new RunningLoad(out, err, CompletableFuture.supplyAsync(() -> cli.execute(args)));
        }

        /** Returns once stderr holds {@code text}, or {@code seconds} on; the caller asserts which. */
        void awaitErr(String text, long seconds) throws InterruptedException {
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            while (!err.toString().contains(text) && System.nanoTime() < until) {
                Thread.sleep(20);
            }
        }
    }

    private static String[] cat(String[] first, String... more) {
        List<String> all = new ArrayList<>(List.of(first));
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
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
