package org.cocoonjvm.load;

import static org.cocoonjvm.load.Fields.number;
import static org.cocoonjvm.load.Fields.object;
import static org.cocoonjvm.load.Fields.onlyKnown;
import static org.cocoonjvm.load.Fields.positive;
import static org.cocoonjvm.load.Fields.shown;
import static org.cocoonjvm.load.Fields.string;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonStreamContext;
import com.fasterxml.jackson.core.JsonToken;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One load scenario as its parameter file (k6-load/scenarios/*.json) describes it, after the
 * chosen profile and overrides were applied. The k6 scripts read the same file (lib/cocoon.js),
 * so the shape here and there must stay the same; see k6-load/README.md.
 *
 * @param maxRequests  no more requests than this are started, whatever the arrival rates say
 * @param gracefulStop how long requests still running at the end of the stages may finish
 */
public record Scenario(String name, String profile, List<Flow> flows, long maxRequests, Duration gracefulStop,
                       List<Threshold> thresholds) {
    private static final Set<String> TOP = Set.of("name", "description", "max_requests", "graceful_stop", "flows",
            "thresholds", "profiles");
    private static final Set<String> PROFILE = Set.of("scale", "duration", "max_requests", "thresholds");
    private static final Set<String> FLOW = Set.of("request", "abort_after_tokens", "abort_after", "start_rate", "time_unit", "stages",
            "max_vus", "timeout");
    private static final Set<String> STAGE = Set.of("duration", "target");

    /**
     * What a command line or environment changes. Null fields keep the profile's (else the file's) value.
     *
     * @param profile  a block under {@code profiles} (e.g. {@code ci}), or null for the file's own numbers
     * @param scale    multiplies every arrival rate and {@code max_vus}
     * @param duration stretches or shrinks every flow's stages to this total, keeping their shape
     */
    public record Overrides(String profile, Double scale, Duration duration) {
        public static final Overrides NONE = new Overrides(null, null, null);
    }

    /**
     * One stream of arrivals (a k6 {@code ramping-arrival-rate} scenario) and what each request is.
     *
     * @param abort   when the client cuts each stream on purpose, if ever
     * @param timeout the longest one request may take, sending to end, before it is error kind {@code timeout}
     */
    public record Flow(String name, RequestSpec request, Abort abort, double startRate, Duration timeUnit,
                       List<Stage> stages, int maxVus, Duration timeout) {
        public Duration duration() {
            return stages.stream().map(Stage::duration).reduce(Duration.ZERO, Duration::plus);
        }

        /** Arrivals due from the start until {@code seconds}: the integral of the piecewise-linear rate. */
        public double arrivalsBy(double seconds) {
            double unit = timeUnit.toNanos() / 1e9;
            double total = 0;
            double from = startRate;
            double t = 0;
            for (Stage stage : stages) {
                double len = stage.duration().toNanos() / 1e9;
                double span = Math.min(len, seconds - t);
                if (span <= 0) {
                    break;
                }
                double rateAtEnd = len == 0 ? stage.target() : from + (stage.target() - from) * span / len;
                total += (from + rateAtEnd) / 2 * span / unit;
                t += len;
                from = stage.target();
            }
            return total;
        }
    }

    public record Stage(Duration duration, double target) {}

    /**
     * When the client cuts a stream on purpose, counted as {@code aborted}: after this many content
     * events ({@code abort_after_tokens}) or this long after it was sent ({@code abort_after}),
     * whichever comes first.
     *
     * @param afterTokens 0: not on a count of tokens
     * @param after       zero: not on time; else shorter than the flow's timeout, which it then always beats
     */
    public record Abort(int afterTokens, Duration after) {
        public static final Abort NEVER = new Abort(0, Duration.ZERO);
    }

    public Duration duration() {
        return flows.stream().map(Flow::duration).max(Duration::compareTo).orElse(Duration.ZERO);
    }

    public static Scenario load(Path file, Overrides overrides) {
        JsonObject json;
        try {
            String text = Files.readString(file);
            refuseDuplicateKeys(text, file.toString());
            json = new JsonObject(text);
        } catch (NoSuchFileException e) {
            throw new ScenarioException("cannot read scenario file " + file + ": no such file");
        } catch (IOException e) {
            throw new ScenarioException("cannot read scenario file " + file + ": " + e);
        } catch (DecodeException e) {
            throw new ScenarioException(file + " is not a JSON object: " + e.getMessage());
        }
        return parse(json, overrides, file.toString());
    }

    private static final JsonFactory JSON = new JsonFactory();

    /**
     * Refuses a key given twice in one object, naming it: the JSON object the file becomes keeps one
     * of the two silently (the last, as JavaScript's {@code JSON.parse} in the k6 scripts does), so
     * an edit meant to change a field would quietly not. A file that is not JSON at all is left to
     * the parse that follows, which says so.
     */
    static void refuseDuplicateKeys(String text, String where) {
        Deque<Set<String>> open = new ArrayDeque<>();
        try (JsonParser parser = JSON.createParser(text)) {
            for (JsonToken token = parser.nextToken(); token != null; token = parser.nextToken()) {
                switch (token) {
                    case START_OBJECT -> open.push(new HashSet<>());
                    case END_OBJECT -> open.pop();
                    case FIELD_NAME -> {
                        String key = parser.currentName();
                        if (!open.peek().add(key)) {
                            String in = pathOf(parser.getParsingContext().getParent());
                            throw new ScenarioException(where + (in.isEmpty() ? "" : " " + in) + ": duplicate key '" + key + "' (line "
                                    + parser.currentTokenLocation().getLineNr() + "); give each field once");
                        }
                    }
                    default -> { }
                }
            }
        } catch (IOException notJson) {
            // reported by the JSON object's own parse, with its position
        }
    }

    /** Where a parsing context is, as the messages name places: {@code flows.chat.stages[0]}; empty at the top. */
    private static String pathOf(JsonStreamContext context) {
        StringBuilder path = new StringBuilder();
        for (JsonStreamContext c = context; c != null && !c.inRoot(); c = c.getParent()) {
            path.insert(0, c.inArray() ? "[" + c.getCurrentIndex() + "]" : "." + c.getCurrentName());
        }
        return path.toString().replaceFirst("^\\.", "");
    }

    static Scenario parse(JsonObject json, Overrides overrides, String where) {
        onlyKnown(json, TOP, where);
        String name = string(json, "name", where);
        JsonObject profile = new JsonObject();
        if (overrides.profile() != null) {
            JsonObject profiles = object(json, "profiles", where, true);
            if (!profiles.containsKey(overrides.profile())) {
                throw new ScenarioException(where + ": no profile '" + overrides.profile() + "'; it has " + profiles.fieldNames());
            }
            profile = object(profiles, overrides.profile(), where + " profiles", true);
        }
        double scale = overrides.scale() != null ? overrides.scale() : number(profile, "scale", 1.0, where);
        if (!(scale > 0)) {
            throw new ScenarioException(where + ": scale must be positive, got " + scale);
        }
        Duration total = overrides.duration() != null ? overrides.duration()
                : profile.containsKey("duration") ? Fields.duration(profile, "duration", null, where + " profile") : null;

        JsonObject flowsJson = object(json, "flows", where, true);
        if (flowsJson.isEmpty()) {
            throw new ScenarioException(where + ": 'flows' is empty");
        }
        List<Flow> flows = new ArrayList<>();
        Duration longest = Duration.ZERO;
        for (String flowName : flowsJson.fieldNames()) {
            Flow f = flow(flowName, object(flowsJson, flowName, where + " flows", true), scale, where + " flows." + flowName);
            flows.add(f);
            longest = f.duration().compareTo(longest) > 0 ? f.duration() : longest;
        }
        if (total != null) {
            if (total.isZero() || total.isNegative()) {
                throw new ScenarioException(where + ": duration must be positive");
            }
            double stretch = (double) total.toNanos() / longest.toNanos();
            flows = flows.stream().map(f -> new Flow(f.name(), f.request(), f.abort(), f.startRate(), f.timeUnit(),
                    f.stages().stream().map(s -> new Stage(Duration.ofNanos(Math.round(s.duration().toNanos() * stretch)), s.target()))
                            .toList(), f.maxVus(), f.timeout())).toList();
        }
        long maxRequests = (long) number(profile, "max_requests", number(json, "max_requests", Double.NaN, where), where);
        if (maxRequests < 1) {
            throw new ScenarioException(where + ": max_requests must be at least 1 (every run is bounded)");
        }
        Duration gracefulStop = Fields.duration(json, "graceful_stop", "30s", where);
        for (Flow f : flows) {
            if (f.timeout().compareTo(gracefulStop) >= 0) {
                // Else a hung request is cut as interrupted when the run ends, which no threshold counts as an error.
                throw new ScenarioException(where + " flows." + f.name() + ": timeout (" + K6Duration.format(f.timeout())
                        + ") must be shorter than graceful_stop (" + K6Duration.format(gracefulStop) + ")");
            }
        }

        // A profile's thresholds replace the file's for the metrics it names, and keep the others. Every
        // block is checked, chosen or not: CI runs only the ci profile, and k6 refuses a bad expression
        // in any block it is given.
        Map<String, List<Threshold>> byMetric = thresholds(object(json, "thresholds", where, false), flows, where + " thresholds");
        JsonObject profiles = object(json, "profiles", where, false);
        for (String p : profiles.fieldNames()) {
            JsonObject block = object(profiles, p, where + " profiles", true);
            onlyKnown(block, PROFILE, where + " profiles." + p);
            Map<String, List<Threshold>> own = thresholds(object(block, "thresholds", where + " profiles." + p, false), flows,
                    where + " profiles." + p + ".thresholds");
            if (p.equals(overrides.profile())) {
                byMetric.putAll(own);
            }
        }
        List<Threshold> thresholds = byMetric.values().stream().flatMap(List::stream).toList();
        return new Scenario(name, overrides.profile(), List.copyOf(flows), maxRequests, gracefulStop, thresholds);
    }

    private static Map<String, List<Threshold>> thresholds(JsonObject block, List<Flow> flows, String where) {
        Map<String, List<Threshold>> byMetric = new LinkedHashMap<>();
        for (String metric : block.fieldNames()) {
            if (!(block.getValue(metric) instanceof JsonArray list)) {
                throw new ScenarioException(where + "." + metric + " must be a list of expressions");
            }
            List<Threshold> parsed = new ArrayList<>();
            for (Object e : list) {
                Threshold t;
                try {
                    t = Threshold.parse(metric, String.valueOf(e));
                } catch (ScenarioException bad) {
                    throw new ScenarioException(where + ": " + bad.getMessage());
                }
                if (t.scenario() != null && flows.stream().noneMatch(f -> f.name().equals(t.scenario()))) {
                    throw new ScenarioException(where + ": threshold " + t.key() + " names no flow of this file");
                }
                parsed.add(t);
            }
            byMetric.put(metric, parsed);
        }
        return byMetric;
    }

    private static Flow flow(String name, JsonObject json, double scale, String where) {
        onlyKnown(json, FLOW, where);
        RequestSpec request = RequestSpec.parse(object(json, "request", where, true), where + ".request");
        Duration timeout = positive(json, "timeout", "20s", where);
        Abort abort = new Abort((int) number(json, "abort_after_tokens", 0, where),
                json.containsKey("abort_after") ? positive(json, "abort_after", null, where) : Duration.ZERO);
        if (!abort.equals(Abort.NEVER) && !request.stream()) {
            throw new ScenarioException(where + ": " + (abort.afterTokens() > 0 ? "abort_after_tokens" : "abort_after") + " needs a streamed request");
        }
        if (abort.after().compareTo(timeout) >= 0) {
            // Else the timeout cuts the stream first, as an error, and the abort never happens.
            throw new ScenarioException(where + ": abort_after (" + K6Duration.format(abort.after()) + ") must be shorter than timeout ("
                    + K6Duration.format(timeout) + ")");
        }
        if (!(json.getValue("stages") instanceof JsonArray stagesJson) || stagesJson.isEmpty()) {
            throw new ScenarioException(where + ": 'stages' must list at least one {duration, target}");
        }
        List<Stage> stages = new ArrayList<>();
        for (int i = 0; i < stagesJson.size(); i++) {
            String at = where + ".stages[" + i + "]";
            if (!(stagesJson.getValue(i) instanceof JsonObject s)) {
                throw new ScenarioException(at + ": must be an object {duration, target}, got " + shown(stagesJson.getValue(i)));
            }
            onlyKnown(s, STAGE, at);
            stages.add(new Stage(Fields.duration(s, "duration", null, at), number(s, "target", Double.NaN, at) * scale));
        }
        if (stages.stream().allMatch(st -> st.duration().isZero())) {
            throw new ScenarioException(where + ": the stages last no time in all");
        }
        double maxVusInFile = number(json, "max_vus", Double.NaN, where);
        if (maxVusInFile < 1) {
            throw new ScenarioException(where + ": 'max_vus' must be at least 1, got " + json.getValue("max_vus"));
        }
        int maxVus = (int) Math.ceil(maxVusInFile * scale);
        return new Flow(name, request, abort, number(json, "start_rate", 0, where) * scale,
                positive(json, "time_unit", "1s", where), List.copyOf(stages), Math.max(1, maxVus), timeout);
    }
}
