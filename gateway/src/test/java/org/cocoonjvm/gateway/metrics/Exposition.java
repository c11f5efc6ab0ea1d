package org.cocoonjvm.gateway.metrics;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * Samples read from Prometheus text exposition ({@code name{label="value",...} value} lines), so
 * tests ask for a series by name and labels instead of matching whole lines.
 */
public final class Exposition {
    public record Sample(String name, Map<String, String> labels, double value) {}

    private final List<Sample> samples;

    private Exposition(List<Sample> samples) {
        this.samples = samples;
    }

    public static Exposition parse(String text) {
        List<Sample> samples = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (!line.isBlank() && !line.startsWith("#")) {
                samples.add(sample(line));
            }
        }
        return new Exposition(samples);
    }

    /** Samples with this name whose labels include the given {@code key, value} pairs. */
    public List<Sample> find(String name, String... labelPairs) {
        List<Sample> found = new ArrayList<>();
        for (Sample s : samples) {
            if (s.name().equals(name) && hasLabels(s, labelPairs)) {
                found.add(s);
            }
        }
        return found;
    }

    /** The value of the one matching sample; empty when none matches. */
    public OptionalDouble value(String name, String... labelPairs) {
        List<Sample> found = find(name, labelPairs);
        if (found.size() > 1) {
            throw new AssertionError("more than one sample matches " + name + " " + List.of(labelPairs) + ": " + found);
        }
        return found.isEmpty() ? OptionalDouble.empty() : OptionalDouble.of(found.getFirst().value());
    }

    /** The value of the one matching sample, failing when there is none. */
    public double get(String name, String... labelPairs) {
        return value(name, labelPairs).orElseThrow(() -> new AssertionError("no sample " + name + " " + List.of(labelPairs)));
    }

    private static boolean hasLabels(Sample s, String[] pairs) {
        for (int i = 0; i < pairs.length; i += 2) {
            if (!pairs[i + 1].equals(s.labels().get(pairs[i]))) {
                return false;
            }
        }
        return true;
    }

    private static Sample sample(String line) {
        int i = 0;
        while (i < line.length() && line.charAt(i) != '{' && line.charAt(i) != ' ') {
            i++;
        }
        String name = line.substring(0, i);
        Map<String, String> labels = new LinkedHashMap<>();
        if (i < line.length() && line.charAt(i) == '{') {
            i++;
            while (line.charAt(i) != '}') {
                int eq = line.indexOf('=', i);
                String key = line.substring(i, eq).trim();
                StringBuilder value = new StringBuilder();
                int j = eq + 2;  // past ="
                for (; line.charAt(j) != '"'; j++) {
                    char c = line.charAt(j);
                    if (c == '\\') {
                        char escaped = line.charAt(++j);
                        value.append(escaped == 'n' ? '\n' : escaped);
                    } else {
                        value.append(c);
                    }
                }
                labels.put(key, value.toString());
                i = j + 1;
                if (line.charAt(i) == ',') {
                    i++;
                }
            }
            i++;
        }
        String[] rest = line.substring(i).trim().split("\\s+");  // value, then an optional timestamp
        return new Sample(name, labels, number(rest[0]));
    }

    private static double number(String text) {
        return switch (text) {
            case "+Inf" -> Double.POSITIVE_INFINITY;
            case "-Inf" -> Double.NEGATIVE_INFINITY;
            default -> Double.parseDouble(text);
        };
    }
}
