package org.cocoonjvm.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Parameter files and the threshold subset: what is accepted, what each means, what is refused and how. */
class ScenarioFileTest {

    @Test
    void everyShippedScenarioLoadsWithAndWithoutItsCiProfile() throws IOException {
        try (Stream<Path> files = Files.list(Path.of("scenarios"))) {
            List<Path> all = files.filter(p -> p.toString().endsWith(".json")).toList();
            assertThat(all).hasSize(4);
            for (Path file : all) {
                Scenario full = Scenario.load(file, Scenario.Overrides.NONE);
                Scenario ci = Scenario.load(file, new Scenario.Overrides("ci", null, null));
                assertThat(full.thresholds()).isNotEmpty();
                assertThat(ci.duration()).isLessThanOrEqualTo(Duration.ofSeconds(10));
                assertThat(ci.duration()).isLessThan(full.duration());
            }
        }
    }

    @Test
    void rampingRateIsIntegratedPiecewise() {
        Scenario s = Scenario.parse(scenario("""
                {"start_rate": 0, "stages": [{"duration": "10s", "target": 10}, {"duration": "5s", "target": 10}]}"""),
                Scenario.Overrides.NONE, "test");
        Scenario.Flow f = s.flows().getFirst();
        assertThat(f.arrivalsBy(5)).isCloseTo(12.5, within(1e-9));    // half of a 0→5/s ramp
        assertThat(f.arrivalsBy(10)).isCloseTo(50, within(1e-9));
        assertThat(f.arrivalsBy(15)).isCloseTo(100, within(1e-9));
        assertThat(f.arrivalsBy(99)).isCloseTo(100, within(1e-9));
    }

    @Test
    void scaleAndDurationOverridesKeepTheShape() {
        Scenario s = Scenario.parse(scenario("""
                {"start_rate": 2, "stages": [{"duration": "30s", "target": 10}, {"duration": "10s", "target": 0}]}"""),
                new Scenario.Overrides(null, 0.5, Duration.ofSeconds(4)), "test");
        Scenario.Flow f = s.flows().getFirst();
        assertThat(f.stages()).extracting(Scenario.Stage::duration).containsExactly(Duration.ofSeconds(3), Duration.ofSeconds(1));
        assertThat(f.stages()).extracting(Scenario.Stage::target).containsExactly(5.0, 0.0);
        assertThat(f.startRate()).isEqualTo(1.0);
        assertThat(f.maxVus()).isEqualTo(5);
    }

    @Test
    void profileThresholdsReplaceOnlyTheMetricsTheyName() {
        JsonObject json = scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": 1}]}")
                .put("thresholds", new JsonObject().put("ttft", List.of("p(99)<100")).put("errors", List.of("count<1")))
                .put("profiles", new JsonObject().put("ci", new JsonObject().put("duration", "2s")
                        .put("thresholds", new JsonObject().put("ttft", List.of("p(99)<900")))));
        Scenario ci = Scenario.parse(json, new Scenario.Overrides("ci", null, null), "test");
        assertThat(ci.thresholds()).extracting(t -> t.key() + " " + t.expression())
                .containsExactly("ttft p(99)<900", "errors count<1");
        assertThatThrownBy(() -> Scenario.parse(json, new Scenario.Overrides("nightly", null, null), "test"))
                .isInstanceOf(ScenarioException.class).hasMessageContaining("no profile 'nightly'");
    }

    @Test
    void thresholdsEvaluateLikeK6() {
        Recorder r = new Recorder();
        for (int ms = 1; ms <= 100; ms++) {
            r.trend(Metric.TTFT, ms * 1_000_000L);
        }
        r.add(Metric.TOKENS, 500);
        r.rate(Metric.ERROR_RATE, true);
        r.rate(Metric.ERROR_RATE, false);
        r.rate(Metric.ERROR_RATE, false);
        r.rate(Metric.ERROR_RATE, false);
        Recorder.Snapshot snap = r.snapshot(10);
        Map<String, Recorder.Snapshot> none = Map.of();
        assertThat(Threshold.parse("ttft", "p(99)<99.5").evaluate(snap, none).value()).isCloseTo(99.01, within(1e-9));
        assertThat(Threshold.parse("ttft", "p(99)<99").evaluate(snap, none).ok()).isFalse();
        assertThat(Threshold.parse("ttft", "med<=50.5").evaluate(snap, none).ok()).isTrue();
        assertThat(Threshold.parse("ttft", "avg>50").evaluate(snap, none).ok()).isTrue();
        assertThat(Threshold.parse("ttft", "max<100").evaluate(snap, none).ok()).isFalse();
        assertThat(Threshold.parse("tokens", "count>=500").evaluate(snap, none).ok()).isTrue();
        assertThat(Threshold.parse("tokens", "rate>49").evaluate(snap, none).value()).isEqualTo(50.0);   // per second, as k6
        assertThat(Threshold.parse("error_rate", "rate<0.3").evaluate(snap, none).value()).isEqualTo(0.25);
        assertThat(Threshold.parse("itl", "p(99)<1").evaluate(snap, none).ok()).as("no samples: passes, as in k6").isTrue();
    }

    @Test
    void unknownOrMisappliedThresholdsAreRefusedClearly() {
        assertThatThrownBy(() -> Threshold.parse("ttft", "p99<500")).isInstanceOf(ScenarioException.class)
                .hasMessageContaining("expected AGG OP NUMBER");
        assertThatThrownBy(() -> Threshold.parse("ttft", "p(99)==500")).isInstanceOf(ScenarioException.class);
        assertThatThrownBy(() -> Threshold.parse("ttft", "count<5")).isInstanceOf(ScenarioException.class)
                .hasMessageContaining("does not apply to ttft, a trend metric");
        assertThatThrownBy(() -> Threshold.parse("errors", "p(90)<1")).isInstanceOf(ScenarioException.class);
        assertThatThrownBy(() -> Threshold.parse("latency", "avg<1")).isInstanceOf(ScenarioException.class)
                .hasMessageContaining("unknown metric 'latency'");
        assertThatThrownBy(() -> Threshold.parse("interrupted", "count<1")).isInstanceOf(ScenarioException.class)
                .hasMessageContaining("k6 does not define");
        assertThatThrownBy(() -> Threshold.parse("ttft{url:x}", "avg<1")).isInstanceOf(ScenarioException.class)
                .hasMessageContaining("{scenario:NAME}");
        JsonObject json = scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": 1}]}")
                .put("thresholds", new JsonObject().put("ttft{scenario:nope}", List.of("avg<1")));
        assertThatThrownBy(() -> Scenario.parse(json, Scenario.Overrides.NONE, "test")).isInstanceOf(ScenarioException.class)
                .hasMessageContaining("names no flow");
    }

    @Test
    void badFilesAreRefusedWithTheFieldNamed() {
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": 1}], \"rate\": 3}"),
                Scenario.Overrides.NONE, "f.json")).hasMessageContaining("f.json flows.only: unknown field 'rate'");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": [{\"duration\": \"10 seconds\", \"target\": 1}]}"),
                Scenario.Overrides.NONE, "f.json")).hasMessageContaining("not a k6 duration");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": []}"), Scenario.Overrides.NONE, "f.json"))
                .hasMessageContaining("'stages' must list");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": 1}]}").put("max_requests", 0),
                Scenario.Overrides.NONE, "f.json")).hasMessageContaining("every run is bounded");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": 1}], \"timeout\": \"30s\"}"),
                Scenario.Overrides.NONE, "f.json")).hasMessage("f.json flows.only: timeout (30000ms) must be shorter than graceful_stop (30000ms)");
        assertThat(K6Duration.parse("1m30s", "x")).isEqualTo(Duration.ofSeconds(90));
        assertThat(K6Duration.parse("250ms", "x")).isEqualTo(Duration.ofMillis(250));
    }

    @Test
    void wrongTypesAndZeroDurationsAreRefusedNamingTheField() {
        String stage = "[{\"duration\": \"1s\", \"target\": 1}]";
        Map<String, String> refused = Map.of(
                "{\"stages\": {\"duration\": \"1s\", \"target\": 1}}", "f.json flows.only: 'stages' must list at least one {duration, target}",
                "{\"stages\": [5]}", "f.json flows.only.stages[0]: must be an object {duration, target}, got 5",
                "{\"stages\": [{\"duration\": 5, \"target\": 1}]}",
                "f.json flows.only.stages[0]: 'duration' must be a k6 duration string (like \"30s\"), got 5",
                "{\"stages\": " + stage + ", \"time_unit\": \"0s\"}", "f.json flows.only: 'time_unit' must be longer than 0, got 0s",
                "{\"stages\": " + stage + ", \"timeout\": \"0ms\"}", "f.json flows.only: 'timeout' must be longer than 0, got 0ms",
                "{\"stages\": [{\"duration\": \"0s\", \"target\": 1}]}", "f.json flows.only: the stages last no time in all",
                "{\"stages\": " + stage + ", \"max_vus\": 0}", "f.json flows.only: 'max_vus' must be at least 1, got 0");
        refused.forEach((flow, message) -> assertThatThrownBy(() -> Scenario.parse(scenario(flow), Scenario.Overrides.NONE, "f.json"))
                .isInstanceOf(ScenarioException.class).hasMessage(message));

        JsonObject yes = scenario("{\"stages\": " + stage + "}");
        yes.getJsonObject("flows").getJsonObject("only").getJsonObject("request").put("stream", "yes");
        assertThatThrownBy(() -> Scenario.parse(yes, Scenario.Overrides.NONE, "f.json"))
                .hasMessage("f.json flows.only.request: 'stream' must be true or false, got \"yes\" (a string)");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": " + stage + "}").put("graceful_stop", 30), Scenario.Overrides.NONE,
                "f.json")).hasMessage("f.json: 'graceful_stop' must be a k6 duration string (like \"30s\"), got 30");
        assertThatThrownBy(() -> Scenario.load(Path.of("no-such.json"), Scenario.Overrides.NONE))
                .hasMessage("cannot read scenario file no-such.json: no such file");
    }

    /** A quoted number is refused as a string, quotes shown: bare, "got 64" read as the very number asked for (audit P, P-9). */
    @Test
    void aNumberGivenAsAString_isNamedAString() {
        String stage = "[{\"duration\": \"1s\", \"target\": 1}]";
        JsonObject quoted = scenario("{\"stages\": " + stage + "}");
        quoted.getJsonObject("flows").getJsonObject("only").getJsonObject("request").put("max_tokens", "64");
        assertThatThrownBy(() -> Scenario.parse(quoted, Scenario.Overrides.NONE, "f.json")).isInstanceOf(ScenarioException.class)
                .hasMessage("f.json flows.only.request: 'max_tokens' must be a non-negative number, got \"64\" (a string)");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": " + stage + ", \"max_vus\": \"10\"}"), Scenario.Overrides.NONE,
                "f.json")).hasMessage("f.json flows.only: 'max_vus' must be a non-negative number, got \"10\" (a string)");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": \"5\"}]}"),
                Scenario.Overrides.NONE, "f.json"))
                .hasMessage("f.json flows.only.stages[0]: 'target' must be a non-negative number, got \"5\" (a string)");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": " + stage + "}").put("max_requests", new JsonObject().put("n", 1)),
                Scenario.Overrides.NONE, "f.json")).hasMessage("f.json: 'max_requests' must be a non-negative number, got an object {\"n\":1}");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": " + stage + "}").put("max_requests", -3), Scenario.Overrides.NONE,
                "f.json")).hasMessage("f.json: 'max_requests' must be a non-negative number, got -3");
        assertThatThrownBy(() -> Scenario.parse(scenario("{\"stages\": " + stage + "}").put("name", 7), Scenario.Overrides.NONE,
                "f.json")).hasMessage("f.json: 'name' must be a non-empty string, got 7");
    }

    /**
     * A key given twice is refused, naming it, where it is and its line: the JSON object keeps one
     * value silently (as JavaScript's JSON.parse does in the k6 scripts), so an edited field would
     * quietly not change (audit P, P-9).
     */
    @Test
    void aDuplicateKey_isRefusedNamingItAndWhere() throws IOException {
        Path file = Files.createTempFile("scenario", ".json");
        try {
            String shipped = Files.readString(Path.of("scenarios/chat-streaming.json"));
            Files.writeString(file, shipped.replaceFirst("\"max_requests\": (\\d+)", "\"max_requests\": $1, \"max_requests\": 3"));
            int line = lineOf(shipped, "\"max_requests\"");
            assertThatThrownBy(() -> Scenario.load(file, Scenario.Overrides.NONE)).isInstanceOf(ScenarioException.class)
                    .hasMessage(file + ": duplicate key 'max_requests' (line " + line + "); give each field once");

            Files.writeString(file, shipped.replaceFirst("\"max_tokens\": (\\d+)", "\"max_tokens\": $1,\n \"max_tokens\": 8"));
            int nested = lineOf(shipped, "\"max_tokens\"") + 1;
            assertThatThrownBy(() -> Scenario.load(file, Scenario.Overrides.NONE))
                    .hasMessage(file + " flows.chat.request: duplicate key 'max_tokens' (line " + nested + "); give each field once");

            Files.writeString(file, shipped.replaceFirst("\\{\"duration\": \"", "{\"target\": 1, \"duration\": \""));
            assertThatThrownBy(() -> Scenario.load(file, Scenario.Overrides.NONE))
                    .hasMessageStartingWith(file + " flows.chat.stages[0]: duplicate key 'target' (line ");

            // The same key in different objects is no duplicate; a file that is not JSON keeps the parser's message.
            assertThat(Scenario.load(Path.of("scenarios/chat-streaming.json"), Scenario.Overrides.NONE).flows()).isNotEmpty();
            Files.writeString(file, "{\"name\": \"t\",, }");
            assertThatThrownBy(() -> Scenario.load(file, Scenario.Overrides.NONE)).hasMessageStartingWith(file + " is not a JSON object: ");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static int lineOf(String text, String first) {
        return (int) text.substring(0, text.indexOf(first)).chars().filter(c -> c == '\n').count() + 1;
    }

    /** CI runs only the ci profile: the file's own thresholds and every profile's are checked all the same. */
    @Test
    void everyThresholdBlockIsCheckedWhateverTheProfile() {
        JsonObject json = scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": 1}]}")
                .put("thresholds", new JsonObject().put("ttft", List.of("p(99) < 1s")))
                .put("profiles", new JsonObject().put("ci", new JsonObject().put("thresholds", new JsonObject().put("ttft", List.of("p(99)<900"))))
                        .put("nightly", new JsonObject().put("thresholds", new JsonObject().put("itl", List.of("p99<5")))));
        assertThatThrownBy(() -> Scenario.parse(json, new Scenario.Overrides("ci", null, null), "f.json"))
                .hasMessageStartingWith("f.json thresholds: threshold 'p(99) < 1s' on ttft");
        json.getJsonObject("thresholds").put("ttft", List.of("p(99)<1000"));
        assertThatThrownBy(() -> Scenario.parse(json, new Scenario.Overrides("ci", null, null), "f.json"))
                .hasMessageStartingWith("f.json profiles.nightly.thresholds: threshold 'p99<5' on itl");
    }

    /** abort_after is a k6 duration, read like timeout; with abort_after_tokens, the first to come cuts (README). */
    @Test
    void abortAfterATime_isADurationShorterThanTheTimeout() {
        String stage = "[{\"duration\": \"1s\", \"target\": 1}]";
        Scenario s = Scenario.parse(scenario("{\"stages\": " + stage + ", \"abort_after\": \"1.5s\", \"abort_after_tokens\": 4}"),
                Scenario.Overrides.NONE, "f.json");
        assertThat(s.flows().getFirst().abort()).isEqualTo(new Scenario.Abort(4, Duration.ofMillis(1500)));
        assertThat(Scenario.parse(scenario("{\"stages\": " + stage + "}"), Scenario.Overrides.NONE, "f.json").flows().getFirst().abort())
                .isEqualTo(Scenario.Abort.NEVER);

        Map<String, String> refused = Map.of(
                "{\"stages\": " + stage + ", \"abort_after\": 1500}",
                "f.json flows.only: 'abort_after' must be a k6 duration string (like \"30s\"), got 1500",
                "{\"stages\": " + stage + ", \"abort_after\": \"0s\"}", "f.json flows.only: 'abort_after' must be longer than 0, got 0s",
                "{\"stages\": " + stage + ", \"abort_after\": \"1.5 s\"}",
                "f.json flows.only.abort_after: '1.5 s' is not a k6 duration (like \"500ms\", \"30s\", \"2m\", \"1h30m\")",
                "{\"stages\": " + stage + ", \"abort_after\": \"2s\", \"timeout\": \"2s\"}",
                "f.json flows.only: abort_after (2000ms) must be shorter than timeout (2000ms)");
        refused.forEach((flow, message) -> assertThatThrownBy(() -> Scenario.parse(scenario(flow), Scenario.Overrides.NONE, "f.json"))
                .isInstanceOf(ScenarioException.class).hasMessage(message));
        JsonObject unstreamed = scenario("{\"stages\": " + stage + ", \"abort_after\": \"1s\"}");
        unstreamed.getJsonObject("flows").getJsonObject("only").getJsonObject("request").put("stream", false);
        assertThatThrownBy(() -> Scenario.parse(unstreamed, Scenario.Overrides.NONE, "f.json"))
                .hasMessage("f.json flows.only: abort_after needs a streamed request");
    }

    @Test
    void requestHeaders_areStringsTheToolsDoNotSetThemselves() {
        assertThat(request(r -> r.put("headers", new JsonObject().put("X-Client", "bench").put("x-trace", ""))).headers())
                .isEqualTo(Map.of("X-Client", "bench", "x-trace", ""));
        assertThat(request(r -> { }).headers()).isEmpty();

        String at = "f.json flows.only.request.headers: ";
        Map<JsonObject, String> refused = new LinkedHashMap<>();
        refused.put(new JsonObject().put("X-Count", 5), at + "'X-Count' must be a string, got 5");
        refused.put(new JsonObject().put("X-Tags", new JsonArray().add("a")), at + "'X-Tags' must be a string, got a list [\"a\"]");
        refused.put(new JsonObject().put("X-Gone", null), at + "'X-Gone' must be a string, got null");
        refused.put(new JsonObject().put("X Client", "bench"), at + "'X Client' is not a header name (letters, digits and !#$%&'*+.^_`|~-)");
        refused.put(new JsonObject().put("X-Client", "a\r\nHost: evil"), at + "'X-Client' must not hold line breaks or control characters");
        refused.put(new JsonObject().put("X-Client", "a").put("x-client", "b"), at + "'X-Client' and 'x-client' are one header; give it once");
        for (String own : List.of("Authorization", "content-type", "HOST", "Content-Length", "Transfer-Encoding", "Connection",
                "Content-Encoding")) {
            refused.put(new JsonObject().put(own, "x"), at + "'" + own + "' cannot be set here; both tools set it themselves "
                    + "(the key from --key or API_KEY, the JSON body's type and length, the target's host and connection)");
        }
        refused.forEach((headers, message) -> assertThatThrownBy(() -> request(r -> r.put("headers", headers)))
                .isInstanceOf(ScenarioException.class).hasMessage(message));
        assertThatThrownBy(() -> request(r -> r.put("headers", List.of("X-Client: bench"))))
                .hasMessage("f.json flows.only.request: 'headers' must be an object, got a list [\"X-Client: bench\"]");
    }

    @Test
    void aPromptSet_isTakenInTurn_andRefusedWhenMalformed() {
        RequestSpec set = prompts(List.of("a", "b", "c"));
        assertThat(LongStream.range(0, 7).mapToObj(set::prompt)).containsExactly("a", "b", "c", "a", "b", "c", "a");
        assertThat(set.body("m", 4).getJsonArray("messages").getJsonObject(0).getString("content")).isEqualTo("b");
        assertThat(request(r -> { }).prompts()).containsExactly("hi");

        String at = "f.json flows.only.request";
        Map<Object, String> refused = new LinkedHashMap<>();
        refused.put(List.of(), at + ": 'prompts' must list at least one prompt, got a list []");
        refused.put("one prompt", at + ": 'prompts' must list at least one prompt, got \"one prompt\" (a string)");
        refused.put(List.of("a", 7), at + ".prompts[1]: must be a non-empty string, got 7");
        refused.put(List.of("a", " "), at + ".prompts[1]: must be a non-empty string, got \" \" (a string)");
        refused.forEach((prompts, message) -> assertThatThrownBy(() -> prompts(prompts)).isInstanceOf(ScenarioException.class)
                .hasMessage(message));
        assertThatThrownBy(() -> request(r -> r.put("prompts", List.of("a")))).hasMessage(at + ": give 'prompt' or 'prompts', not both");
        assertThatThrownBy(() -> request(r -> r.remove("prompt"))).hasMessage(at + ": 'prompt' must be a non-empty string");
        assertThatThrownBy(() -> request(r -> r.put("promts", List.of("a")))).hasMessageStartingWith(at + ": unknown field 'promts'; known: ");
    }

    /** The request of a one-flow file whose request has {@code prompts} in place of its prompt. */
    private static RequestSpec prompts(Object prompts) {
        return request(r -> {
            r.remove("prompt");
            r.put("prompts", prompts);
        });
    }

    /** The request of a one-flow file whose request was changed by {@code edit}. */
    private static RequestSpec request(Consumer<JsonObject> edit) {
        JsonObject json = scenario("{\"stages\": [{\"duration\": \"1s\", \"target\": 1}]}");
        edit.accept(json.getJsonObject("flows").getJsonObject("only").getJsonObject("request"));
        return Scenario.parse(json, Scenario.Overrides.NONE, "f.json").flows().getFirst().request();
    }

    /** A one-flow scenario whose flow has {@code flowFields} plus a request and max_vus. */
    private static JsonObject scenario(String flowFields) {
        JsonObject flow = new JsonObject(flowFields)
                .put("request", new JsonObject().put("stream", true).put("max_tokens", 8).put("prompt", "hi"));
        if (!flow.containsKey("max_vus")) {
            flow.put("max_vus", 10);
        }
        return new JsonObject().put("name", "t").put("max_requests", 100).put("flows", new JsonObject().put("only", flow));
    }
}
