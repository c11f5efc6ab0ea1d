package org.cocoonjvm.load;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Runs a {@link Scenario} against a {@link Target} the way k6's {@code ramping-arrival-rate}
 * executor does: an open model, where requests arrive on schedule whether or not earlier ones
 * finished, up to each flow's {@code max_vus} in flight (arrivals beyond are counted as
 * {@code dropped_iterations}). A run is bounded twice: no request starts after the stages end or
 * past {@code max_requests}, and requests still running {@code graceful_stop} later are cut.
 *
 * <p>All of a run's state lives on one Vert.x context; the HTTP client calls back on it. An
 * operator's stop ({@link #interrupt}) ends the run early and still yields its summary.
 */
public final class LoadDriver {
    private static final long TICK_MS = 5;

    private final Vertx vertx;
    private final Scenario scenario;
    private final Target target;
    private final Clock clock;
    private Duration progressEvery;
    private Consumer<String> progress;
    private TimeSeries.Recording series = new TimeSeries.Recording(TimeSeries.DEFAULT_INTERVAL);

    private final Recorder recorder = new Recorder();
    /** The same samples by flow, for thresholds with a {@code {scenario:NAME}} selector. */
    private final Map<String, Recorder> byFlow = new LinkedHashMap<>();
    private final Set<LoadCall> running = new HashSet<>();
    private final Promise<Summary> result = Promise.promise();
    private Context context;
    private HttpClient client;
    private long[] issued;
    /** Requests sent by each flow: the next one's index, which picks its prompt. */
    private long[] sent;
    private int[] inFlight;
    private long started;
    private long t0;
    private Instant startedAt;
    private long tickTimer = -1;
    private long graceTimer = -1;
    private long progressTimer = -1;
    private boolean stopping;
    private Summary.Ending ending = Summary.Ending.STAGES;

    public LoadDriver(Vertx vertx, Scenario scenario, Target target, Clock clock) {
        this.vertx = vertx;
        this.scenario = scenario;
        this.target = target;
        this.clock = clock;
    }

    /** While the run lasts, a one-line account of it every {@code every}: a long run is otherwise silent until its end. */
    public LoadDriver reportProgress(Duration every, Consumer<String> line) {
        this.progressEvery = every;
        this.progress = line;
        return this;
    }

    /** The summary's time series in intervals of {@code every} instead of {@link TimeSeries#DEFAULT_INTERVAL}; before {@link #run}. */
    public LoadDriver seriesEvery(Duration every) {
        this.series = new TimeSeries.Recording(every);
        return this;
    }

    /** Starts the run; the future completes with its summary once every request has ended. */
    public Future<Summary> run() {
        context = vertx.getOrCreateContext();
        context.runOnContext(v -> begin());
        return result.future();
    }

    /**
     * Ends the run now, from any thread: no more arrivals, running requests cut as
     * {@code interrupted}, and the summary of what was measured, marked as interrupted.
     */
    public void interrupt() {
        context.runOnContext(v -> {
            ending = Summary.Ending.INTERRUPTED;
            if (!stopping) {
                stop();
            }
            List.copyOf(running).forEach(LoadCall::interrupt);
        });
    }

    private void begin() {
        List<Scenario.Flow> flows = scenario.flows();
        int maxVus = flows.stream().mapToInt(Scenario.Flow::maxVus).sum();
        client = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true), new PoolOptions().setHttp1MaxSize(maxVus));
        flows.forEach(f -> byFlow.put(f.name(), new Recorder()));
        issued = new long[flows.size()];
        sent = new long[flows.size()];
        inFlight = new int[flows.size()];
        startedAt = clock.instant();
        t0 = System.nanoTime();
        tickTimer = vertx.setPeriodic(TICK_MS, id -> tick());
        if (progress != null) {
            progressTimer = vertx.setPeriodic(progressEvery.toMillis(), id -> progress.accept(progressLine()));
        }
    }

    private String progressLine() {
        return String.format(Locale.ROOT, "%s: %.0f s of %d s%s, %d started, %d completed, %d rejected, %d errors, %d open",
                scenario.name(), (System.nanoTime() - t0) / 1e9, scenario.duration().toSeconds(), stopping ? " (no more arrivals)" : "",
                started, recorder.count(Metric.COMPLETED), recorder.count(Metric.REJECTED), recorder.count(Metric.ERRORS), running.size());
    }

    private void tick() {
        double elapsed = (System.nanoTime() - t0) / 1e9;
        List<Scenario.Flow> flows = scenario.flows();
        for (int f = 0; f < flows.size() && !stopping; f++) {
            Scenario.Flow flow = flows.get(f);
            long due = (long) Math.floor(flow.arrivalsBy(elapsed));
            while (issued[f] < due && !stopping) {
                issued[f]++;
                if (started >= scenario.maxRequests()) {
                    ending = Summary.Ending.MAX_REQUESTS;
                    stop();
                } else if (inFlight[f] >= flow.maxVus()) {
                    recorder.add(Metric.DROPPED_ITERATIONS, 1);
                    byFlow.get(flow.name()).add(Metric.DROPPED_ITERATIONS, 1);
                } else {
                    send(f, flow);
                }
            }
        }
        if (!stopping && elapsed * 1e9 >= scenario.duration().toNanos()) {
            stop();
        }
    }

    private void send(int f, Scenario.Flow flow) {
        started++;
        inFlight[f]++;
        LoadCall call = new LoadCall(vertx, client, target, flow.request(), sent[f]++, flow.abort(), flow.timeout());
        running.add(call);
        call.start().onSuccess(outcome -> {
            running.remove(call);
            inFlight[f]--;
            outcome.record(recorder);
            outcome.record(byFlow.get(flow.name()));
            series.record(outcome, System.nanoTime() - t0);
            if (stopping && running.isEmpty()) {
                finish();
            }
        });
    }

    /** No new arrivals; running requests get {@code graceful_stop} to end. */
    private void stop() {
        stopping = true;
        vertx.cancelTimer(tickTimer);
        if (running.isEmpty()) {
            finish();
            return;
        }
        graceTimer = vertx.setTimer(Math.max(1, scenario.gracefulStop().toMillis()), id -> {
            graceTimer = -1;
            List.copyOf(running).forEach(LoadCall::interrupt);
        });
    }

    private void finish() {
        if (result.future().isComplete()) {
            return;
        }
        if (graceTimer >= 0) {
            vertx.cancelTimer(graceTimer);
        }
        if (progressTimer >= 0) {
            vertx.cancelTimer(progressTimer);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        Recorder.Snapshot snapshot = recorder.snapshot(seconds);
        Map<String, Recorder.Snapshot> flowSnapshots = new LinkedHashMap<>();
        byFlow.forEach((name, r) -> flowSnapshots.put(name, r.snapshot(seconds)));
        List<Threshold.Result> checks = scenario.thresholds().stream().map(t -> t.evaluate(snapshot, flowSnapshots)).toList();
        Summary summary = new Summary(scenario.name(), scenario.profile(), target, startedAt, snapshot, flowSnapshots, checks,
                ending, series.freeze(seconds));
        client.close().onComplete(v -> result.complete(summary));
    }
}
