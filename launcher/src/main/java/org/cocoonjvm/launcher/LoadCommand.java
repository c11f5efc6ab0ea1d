package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.load.K6Duration;
import org.cocoonjvm.load.LoadDriver;
import org.cocoonjvm.load.Metric;
import org.cocoonjvm.load.Scenario;
import org.cocoonjvm.load.ScenarioException;
import org.cocoonjvm.load.Summary;
import org.cocoonjvm.load.Target;
import org.cocoonjvm.load.TimeSeries;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * {@code cocoon load}: one k6-load scenario through the JVM driver, from the same parameter file
 * the k6 script reads, judged by the same thresholds. Exits 99 when a threshold fails, as k6 does.
 * SIGINT or SIGTERM ends the run early with its summary and JSON, and exit code 105 (k6's own for
 * an external abort); a second signal acts as the JVM's default.
 */
@Command(name = "load", mixinStandardHelpOptions = true,
        description = "Run a k6-load scenario (k6-load/scenarios/*.json) with the JVM load driver.")
final class LoadCommand implements Callable<Integer> {
    /** k6's exit code for failed thresholds. */
    static final int THRESHOLDS_FAILED = 99;
    /** k6's exit code when the run was stopped from outside (Ctrl-C). */
    static final int INTERRUPTED = 105;
    private static final Duration PROGRESS_EVERY = Duration.ofSeconds(5);

    @Option(names = "--scenario", required = true, description = "Parameter file, e.g. k6-load/scenarios/chat-streaming.json.")
    Path scenario;

    @Option(names = "--url", defaultValue = "http://127.0.0.1:8080",
            description = "Gateway (or worker) base URL, http://host[:port]; a trailing /v1 (the OpenAI SDKs' form) means the same. "
                    + "Default: ${DEFAULT-VALUE}.")
    String url;

    @Option(names = "--key", required = true, description = "API key (the demo prints it in its ready line).")
    String key;

    @Option(names = "--model", description = "Model to ask for. Default: the first one GET /v1/models lists.")
    String model;

    @Option(names = "--profile", description = "A block under the file's 'profiles', e.g. ci (short, looser thresholds).")
    String profile;

    @Option(names = "--scale", description = "Multiplies every arrival rate and max_vus.")
    Double scale;

    @Option(names = "--duration", description = "Stretches the stages to this total, k6 style: 30s, 5m.")
    String duration;

    @Option(names = "--warmup", description = "First run the scenario's flows, stretched to this long (k6 style: 10s), "
            + "and discard their numbers: the client's cold start stays out of the percentiles.")
    String warmup;

    @Option(names = "--series-interval", description = "The summary's time series: one line (and JSON entry) per this long, "
            + "k6 style. Default: 10s.")
    String seriesInterval;

    @Option(names = "--json", description = "Also write the summary as JSON to this file; checked writable before the run starts.")
    Path json;

    @Mixin
    TransportChoice network;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Scenario s;
        Scenario warm = null;
        URI base;
        Duration every = TimeSeries.DEFAULT_INTERVAL;
        try {
            base = Target.baseUrl(url, "--url");
            if (seriesInterval != null) {
                every = K6Duration.parse(seriesInterval, "--series-interval");
                ScenarioException.longEnough("--series-interval", every);
            }
            s = Scenario.load(scenario, new Scenario.Overrides(profile, scale,
                    duration == null ? null : K6Duration.parse(duration, "--duration")));
            if (warmup != null) {
                Duration length = K6Duration.parse(warmup, "--warmup");
                if (length.isZero()) {
                    throw new Cocoon.UsageException("--warmup must be longer than 0, got " + warmup);
                }
                warm = Scenario.load(scenario, new Scenario.Overrides(profile, scale, length));
            }
        } catch (ScenarioException e) {
            throw new Cocoon.UsageException(e.getMessage());
        }
        if (json != null) {
            // Found now, not after a 30-minute soak whose summary it was to keep.
            OutputPaths.requireWritableFile("--json", json);
        }
        Vertx vertx = network.vertx();
        try {
            Target target;
            try {
                // The probe bounds its own connecting and waiting; its failure names the option to fix.
                target = new Target(base, key, model != null ? model : Target.firstModel(vertx, base, key).await());
            } catch (ScenarioException e) {
                throw new Cocoon.UsageException(e.getMessage());
            }
            PrintWriter err = spec.commandLine().getErr();
            if (warm != null) {
                // Unmeasured, and before the signal handlers: a stop now has nothing to report.
                Summary w = new LoadDriver(vertx, warm, target, Clock.systemUTC()).run().await(bound(warm), TimeUnit.SECONDS);
                err.printf(Locale.ROOT, "warm-up: %d requests in %.1f s, not counted%n", w.snapshot().count(Metric.REQUESTS),
                        w.snapshot().seconds());
            }
            LoadDriver driver = new LoadDriver(vertx, s, target, Clock.systemUTC()).reportProgress(PROGRESS_EVERY, err::println)
                    .seriesEvery(every);
            Map<Signal, SignalHandler> previous = new HashMap<>();
            SignalHandler stop = signal -> {
                err.println("cocoon: SIG" + signal.getName() + ": stopping the run; its summary follows (signal again to quit at once)");
                previous.forEach(Signal::handle);
                driver.interrupt();
            };
            for (String name : new String[] {"INT", "TERM"}) {
                try {
                    previous.put(new Signal(name), Signal.handle(new Signal(name), stop));
                } catch (IllegalArgumentException e) {
                    // The JVM keeps the signal (-Xrs, or a platform without it): it then ends the process as before.
                }
            }
            Summary summary;
            try {
                summary = driver.run().await(bound(s), TimeUnit.SECONDS);
            } finally {
                previous.forEach(Signal::handle);
            }
            spec.commandLine().getOut().print(summary.text());
            spec.commandLine().getOut().flush();
            int exit = summary.ended() == Summary.Ending.INTERRUPTED ? INTERRUPTED : summary.passed() ? 0 : THRESHOLDS_FAILED;
            if (json != null) {
                // Checked before the run, but the disk may have filled or the folder gone since: the run's
                // result stays the exit code, and its JSON is kept somewhere rather than lost.
                OutputPaths.writeOrKeep("--json", json, summary.json().encodePrettily(), err);
            }
            return exit;
        } finally {
            vertx.close().await();
        }
    }

    /** The most a run may take: its stages, its graceful stop, and a minute for the driver's own start and end. */
    private static long bound(Scenario s) {
        return s.duration().toSeconds() + s.gracefulStop().toSeconds() + 60;
    }
}
