package org.cocoonjvm.load;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** k6's duration strings ({@code 500ms}, {@code 30s}, {@code 2m}, {@code 1h30m}), so one file serves both tools. */
public final class K6Duration {
    private static final Pattern PART = Pattern.compile("(\\d+(?:\\.\\d+)?)(ms|s|m|h)");

    private K6Duration() {}

    public static Duration parse(String text, String where) {
        if (text == null || text.isBlank()) {
            throw new ScenarioException(where + ": a duration is required (like \"30s\" or \"2m\")");
        }
        Matcher m = PART.matcher(text);
        long nanos = 0;
        int at = 0;
        while (at < text.length()) {
            if (!m.find(at) || m.start() != at) {
                throw new ScenarioException(where + ": '" + text + "' is not a k6 duration (like \"500ms\", \"30s\", \"2m\", \"1h30m\")");
            }
            double value = Double.parseDouble(m.group(1));
            double unitNanos = switch (m.group(2)) {
                case "ms" -> 1e6;
                case "s" -> 1e9;
                case "m" -> 60e9;
                default -> 3600e9;
            };
            nanos += Math.round(value * unitNanos);
            at = m.end();
        }
        return Duration.ofNanos(nanos);
    }

    /** The shortest k6 form: whole milliseconds. */
    public static String format(Duration d) {
        return d.toMillis() + "ms";
    }
}
