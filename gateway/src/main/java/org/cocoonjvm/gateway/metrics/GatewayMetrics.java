package org.cocoonjvm.gateway.metrics;

import io.micrometer.core.instrument.Counter;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.gateway.billing.PaymentStats;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.RequestBilling.RecoveryReporter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.ext.web.RoutingContext;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.gateway.relay.RelayObserver;
import org.cocoonjvm.gateway.relay.RelayObserver.GeneratedTokens;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.gateway.relay.RequestOutcome;
import org.cocoonjvm.protocol.metrics.ProcessMetrics;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.openai.ServiceTier;

/**
 * The gateway's Prometheus metrics: latency histograms and token counters fed by the relay, HTTP
 * statuses of the API, and worker gauges read from the registry at scrape time. Names follow
 * vLLM's ({@code cocoon_time_to_first_token_seconds} where vLLM has
 * {@code vllm:time_to_first_token_seconds}); the gateway README maps them to OpenTelemetry GenAI.
 *
 * <p>Recording runs on event loops: instruments are looked up once per model, status or error
 * code and cached; a token costs an update of the event loop's own inter-token counters. Labels
 * are bounded: names of models that some worker serves or served lately (any other name is
 * {@value #UNKNOWN_MODEL}), statuses, routes, tiers, error codes, worker ids; never request ids or
 * API keys.
 *
 * <p>Counters whose label values are known in advance are exported at 0 from the start (or, per
 * model, from the first scrape that finds the model served), so that {@code increase()} sees
 * their first occurrence: a series that only appears at 1 shows no increase.
 *
 * <p>Beside them, the process's own ({@link ProcessMetrics}).
 */
public final class GatewayMetrics implements RelayObserver, AutoCloseable {
    /** The model label of a request naming a model no worker serves: clients must not mint series. */
    public static final String UNKNOWN_MODEL = "unknown";

    private final PrometheusMeterRegistry meters;
    private final WorkerRegistry workers;
    private final WorkerGauges workerGauges;
    private final InterTokenHistogram interToken = new InterTokenHistogram(ModelMeters.LATENCY_BUCKETS);
    private final ConcurrentHashMap<String, ModelMeters> byModel = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<RequestKey, Counter> requests = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, Counter> errors = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Response, Counter> responses = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, Counter> grpcRefusals = new ConcurrentHashMap<>();
    /** Models whose series {@link #preExportKnownModels} has exported. */
    private final Set<String> preExported = ConcurrentHashMap.newKeySet();
    private final Counter clientDisconnects;
    private final AtomicLong scrapes = new AtomicLong();
    private final Counter attempts;
    private final Counter retries;
    /** Requests the ledger's recovery ended, and what it charged them, by error code ({@link #recovered}). */
    private final Map<String, Counter> recoveredRequests = new HashMap<>();
    private final Map<String, Counter> recoveredBilled = new HashMap<>();
    private final ProcessMetrics process;

    private record RequestKey(String model, int status, ServiceTier tier) {}

    private record Response(String route, int status) {}

    /** Paths polled by load balancers and Prometheus: their answers are counted, not logged. */
    public static final Set<String> PROBE_PATHS = Set.of("/health", "/ready", "/metrics");

    /** Every status the gateway sends: its errors', a success's, and a CORS preflight's 204. */
    private static final SortedSet<Integer> SENT_STATUSES = Stream.concat(Stream.of(200, 204),
            Arrays.stream(ErrorKind.values()).map(kind -> kind.httpStatus)).collect(Collectors.toCollection(TreeSet::new));

    /**
     * The route label's values, and the statuses exported at 0 for each: the API's every status;
     * elsewhere the answers that say something is wrong or right there (admin keys guessed, a
     * stopping gateway's /ready, paths probed). The rest appear at their first response.
     */
    private static final Map<String, Set<Integer>> PRE_EXPORTED_RESPONSES = Map.of(
            "v1", SENT_STATUSES,
            "admin", Set.of(200, 401, 404),
            "probe", Set.of(200, 503),
            "other", Set.of(404));

    /**
     * Statuses a relayed request ends with, exported at 0 per model and tier: a model's first
     * failure after a start (its workers gone: 503) must show in an error ratio.
     */
    private static final List<Integer> RELAYED_STATUSES = List.of(200, RequestOutcome.CLIENT_CLOSED_REQUEST, 502, 503, 504);

    public GatewayMetrics(PrometheusMeterRegistry meters, WorkerRegistry workers) {
        this.meters = meters;
        this.workers = workers;
        this.workerGauges = new WorkerGauges(meters, workers);
        meters.getPrometheusRegistry().register(interToken);
        this.clientDisconnects = Counter.builder("cocoon.client.disconnects")
                .description("Requests whose client closed the connection before the end").register(meters);
        this.attempts = Counter.builder("cocoon.request.attempts")
                .description("Workers tried, over all requests (retries happen only before the first token)").register(meters);
        this.retries = Counter.builder("cocoon.request.retries")
                .description("Attempts beyond each request's first").register(meters);
        // At 0 from the start, so that rate() and increase() see an error's first occurrence.
        for (ErrorKind kind : ErrorKind.values()) {
            error(kind.stableCode());
        }
        error(Relay.STALLED);
        PRE_EXPORTED_RESPONSES.forEach((route, statuses) -> statuses.forEach(status -> response(route, status)));
        for (String code : List.of(RecoveryReporter.GATEWAY_RESTARTED, RecoveryReporter.GATEWAY_LEASE_EXPIRED)) {
            recoveredRequests.put(code, Counter.builder("cocoon.recovered.requests").tag("code", code)
                    .description("Requests whose gateway died running them, ended by the ledger's recovery in this process "
                            + "at their last checkpoint, by error code").register(meters));
            recoveredBilled.put(code, Counter.builder("cocoon.recovered.billed.nanoton").tag("code", code)
                    .description("Cost charged to client accounts by the ledger's recovery in this process, in nanoTON, "
                            + "by error code").register(meters));
        }
        for (ErrorKind kind : ErrorKind.values()) {
            grpcRefusal(kind.stableCode());
        }
        this.process = ProcessMetrics.bindTo(meters);
    }

    /** Stops listening for the JVM's GC notifications, which would otherwise keep this registry alive. */
    @Override
    public void close() {
        process.close();
    }

    private Counter error(String code) {
        return errors.computeIfAbsent(code, c -> Counter.builder("cocoon.request.errors").tag("code", c)
                .description("Failed requests over HTTP and gRPC by OpenAI error code: refused before a relay, or failed"
                        + " before or after the first token").register(meters));
    }

    /** The payment rounds and the money owed to workers that no signed state pays yet. */
    public void payments(PaymentStats stats) {
        FunctionCounter.builder("cocoon.payment.rounds", stats, PaymentStats::roundsPaid).tag("outcome", "paid")
                .description("Payment rounds: states signed, journaled and sent (paid), or none sent (failed)").register(meters);
        FunctionCounter.builder("cocoon.payment.rounds", stats, PaymentStats::roundsFailed).tag("outcome", "failed")
                .description("Payment rounds: states signed, journaled and sent (paid), or none sent (failed)").register(meters);
        Gauge.builder("cocoon.payment.absent.unpaid.nanoton", stats, PaymentStats::unpaidAbsentNanoton)
                .description("Earned by workers that have no session now and in no signed state yet: it waits for their return")
                .strongReference(true).register(meters);
        Gauge.builder("cocoon.payment.channels.absent", stats, PaymentStats::absentChannels)
                .description("Open payment channels whose worker has no session (see /admin/workers, absent_channels)")
                .strongReference(true).register(meters);
        FunctionCounter.builder("cocoon.payment.channels.opened", stats, PaymentStats::openedOnChain)
                .description("New payment channels whose contract was deployed, funded and opened on chain").register(meters);
        String closed = "Payment channels closed on chain: cooperative closes signed (the worker sends them), or closed "
                + "by the worker without the gateway";
        FunctionCounter.builder("cocoon.payment.channels.closed", stats, PaymentStats::closedCooperatively)
                .tag("close", "cooperative").description(closed).register(meters);
        FunctionCounter.builder("cocoon.payment.channels.closed", stats, PaymentStats::closedWithoutGateway)
                .tag("close", "without_gateway").description(closed).register(meters);
        FunctionCounter.builder("cocoon.payment.channel.closes.started.outside", stats,
                        PaymentStats::closesStartedOutside)
                .description("Uncooperative closes started on chain with this gateway's payer key, which its own code never"
                        + " does: reported by its workers, confirmed on chain (alert on any)").register(meters);
        Gauge.builder("cocoon.payment.channel.deposits.nanoton", stats, PaymentStats::depositsNanoton)
                .description("Deposited by the gateway in the contracts of its open on-chain channels, taken at each round")
                .strongReference(true).register(meters);
        stats.onOpenRefused(reason -> Counter.builder("cocoon.payment.channel.open.refusals").tag("reason", reason)
                .description("Workers whose payment channel could not be opened on chain, by reason code")
                .register(meters).increment());
    }

    /** Whether the ledger answers, and the settlements waiting for it. */
    public void ledger(RequestBilling billing) {
        Gauge.builder("cocoon.ledger.up", billing, b -> b.ledgerOutage().isPresent() ? 0 : 1)
                .description("1 while the ledger's database answers, 0 while its last call found it unreachable")
                .strongReference(true).register(meters);
        Gauge.builder("cocoon.ledger.settlements.pending", billing, RequestBilling::settlementsPending)
                .description("Settlements the ledger has not taken yet, retried in the background until it does")
                .strongReference(true).register(meters);
        // Clients see a lost race only as latency (a PostgreSQL deadlock waits a second to be broken).
        for (String race : AccountBook.RACES) {
            FunctionCounter.builder("cocoon.ledger.transactions.retried", billing,
                            b -> b.ledgerRacesRunAgain().getOrDefault(race, 0L))
                    .tag("race", race)
                    .description("Ledger transactions run again after losing a race with another, by race")
                    .register(meters);
        }
    }

    public PrometheusMeterRegistry meters() {
        return meters;
    }

    /** Metrics in a fresh Prometheus registry of their own. */
    public static GatewayMetrics prometheus(WorkerRegistry workers) {
        return new GatewayMetrics(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT), workers);
    }

    /**
     * Client connections the gateway closed itself, for {@code reason}: {@code header_timeout} (a
     * request head not whole in time: slow or hostile clients) or {@code idle_timeout} (routine).
     */
    public Counter connectionsClosed(String reason) {
        return Counter.builder("cocoon.connections.closed").tag("reason", reason)
                .description("Client connections closed by the gateway: by which deadline passed, or the longest idle"
                        + " closed past the bound on idle connections (idle_evicted)").register(meters);
    }

    /** A gap of {@code tokens} tokens counts as that many samples of {@code nanos / tokens}. */
    @Override
    public TokenGaps tokenGaps(String model) {
        String name = workers.modelName(model);
        model(name);  // a token arrived, so a worker serves the model
        return interToken.local(name);  // the relay records on the event loop that asks here
    }

    /**
     * Counted as the relay passes them on (audit V, V-3), into the event loop's own shard of the
     * model's counter: the relay holds it from its first delta, and each delta costs a plain add.
     */
    @Override
    public GeneratedTokens generatedTokens(String model) {
        return model(workers.modelName(model)).generationTokens().local();
    }

    /**
     * A payment round's checkpoint recorded {@code nanoton} more of a running request's cost in the
     * ledger ({@link RequestBilling#countProgress}): counted now; its end counts only the rest.
     */
    public void billedProgress(String model, long nanoton) {
        model(workers.modelName(model)).billed().increment(nanoton);
    }

    /**
     * The ledger's recovery in this process ended a request its gateway never did (see {@link
     * RequestBilling#reportRecovered}). Counted apart from the relayed requests: the dead process
     * counted its checkpoints' cost in {@code cocoon_billed_nanoton_total} as they committed, and a
     * recovery charges exactly the last one.
     */
    public void recovered(RecoveredReservation recovered, String errorCode) {
        recoveredRequests.get(errorCode).increment();
        recoveredBilled.get(errorCode).increment(recovered.settlement().chargedNanoton());
    }

    @Override
    public void finished(RequestOutcome o) {
        // A model served lately is still a model (its requests are 503, not 404): an outage must show under its name.
        boolean known = o.workerId() != null || workers.knows(o.model());
        // name@hash is the same model as name: one series, or dashboards grouping by model count it twice.
        String model = known ? workers.modelName(o.model()) : UNKNOWN_MODEL;
        requests.computeIfAbsent(new RequestKey(model, o.status(), o.tier()), this::requestCounter).increment();
        if (o.errorCode() != null) {
            error(o.errorCode()).increment();
        }
        if (o.clientGone()) {
            clientDisconnects.increment();
        }
        attempts.increment(o.attempts());
        if (o.attempts() > 1) {
            retries.increment(o.attempts() - 1);
        }
        if (known) {  // otherwise no worker took it: no tokens, no timings, and no per-model series
            recordModel(model(model), o);
        }
    }

    private static void recordModel(ModelMeters m, RequestOutcome o) {
        if (o.ttftNanos() >= 0) {
            m.timeToFirstToken().record(o.ttftNanos(), TimeUnit.NANOSECONDS);
        }
        if (o.overheadNanos() >= 0) {
            m.gatewayOverhead().record(o.overheadNanos(), TimeUnit.NANOSECONDS);
        }
        if (o.queueNanos() >= 0) {
            m.queueTime().record(o.queueNanos(), TimeUnit.NANOSECONDS);
        }
        if (o.cancelNanos() >= 0) {
            m.cancelLatency().record(o.cancelNanos(), TimeUnit.NANOSECONDS);
        }
        // Not for a client that left or stopped reading before the last byte: its total is its own doing.
        if (o.finishReason() != null && !o.clientGone()) {
            m.endToEnd().record(o.totalNanos(), TimeUnit.NANOSECONDS);
        }
        m.promptTokens().increment(o.promptTokens());
        // What was counted while it ran, live, is part of the totals; the rest counts now. The sum is
        // the outcome's, unless a worker's final count is below the tokens it streamed (never, from an
        // honest one): the counters cannot go back.
        m.generationTokens().local().add(Math.max(0, o.completionTokens() - o.liveCompletionTokens()));
        m.billed().increment(Math.max(0, o.costNanoton() - o.liveCostNanoton()));
    }

    /**
     * Route handler for every path: counts each response by route and HTTP status once its status
     * line is sent, refusals before any relay included (401, 400, 402, 413, 429), then passes on.
     */
    public void countResponses(RoutingContext ctx) {
        String route = route(ctx.normalizedPath());
        ctx.addHeadersEndHandler(v -> response(route, ctx.response().getStatusCode()).increment());
        ctx.next();
    }

    /** A response with this status to a request for {@code path} (null if unreadable), sent without the routes. */
    public void responded(String path, int status) {
        response(route(path), status).increment();
    }

    /**
     * A request answered with an error without a relay: refused before one, or by a handler (404,
     * 405, 408, 500). A relayed request's error is counted with its outcome.
     */
    public void failedUnrelayed(String code) {
        error(code).increment();
    }

    /** An {@code Inference} call refused before a relay (relayed calls are counted as requests): by code in both counters. */
    public void grpcRefused(String code) {
        grpcRefusal(code).increment();
        error(code).increment();
    }

    /**
     * The {@code route} label: {@code v1} (the API), {@code admin}, {@code probe} (health checks and
     * scrapes) or {@code other} (any other path, or one never read), so that paths a scanner tries
     * cannot mint series.
     */
    static String route(String path) {
        if (path == null) {
            return "other";
        }
        if (path.startsWith("/v1/")) {
            return "v1";
        }
        if (path.startsWith("/admin/")) {
            return "admin";
        }
        return PROBE_PATHS.contains(path) ? "probe" : "other";
    }

    private Counter response(String route, int status) {
        return responses.computeIfAbsent(new Response(route, status), r -> Counter.builder("cocoon.http.responses")
                .tag("route", r.route()).tag("status", Integer.toString(r.status()))
                .description("HTTP responses by route and status, counted when the status is sent").register(meters));
    }

    private Counter grpcRefusal(String code) {
        return grpcRefusals.computeIfAbsent(code, c -> Counter.builder("cocoon.grpc.refusals").tag("code", c)
                .description("gRPC Inference calls refused before a relay, by error code").register(meters));
    }

    /** {@code GET /metrics}. */
    public void serve(RoutingContext ctx) {
        scrapes.incrementAndGet();  // before the reading: one counted after a stopping front's last record reads it
        OpenAiResponses.send(ctx.response(), ProcessMetrics.CONTENT_TYPE, scrape());
    }

    /** {@code GET /metrics} answered so far: a stopping gateway lingers until one reads its final counts. */
    public long scrapes() {
        return scrapes.get();
    }

    /** The exposition text, with worker gauges read from the registry now. */
    public String scrape() {
        workerGauges.refresh();
        preExportKnownModels();
        return meters.scrape();
    }

    private ModelMeters model(String model) {
        ModelMeters m = byModel.get(model);
        return m != null ? m : byModel.computeIfAbsent(model, name -> {
            interToken.register(name);
            return ModelMeters.register(meters, name);
        });
    }

    /** A model served now or lately gets its series at 0; registered once, so later scrapes only look them up. */
    private void preExportKnownModels() {
        for (WorkerRegistry.KnownModel known : workers.knownModels()) {
            String name = known.model().getName();
            if (preExported.add(name)) {
                for (ServiceTier tier : ServiceTier.values()) {
                    for (int status : RELAYED_STATUSES) {
                        requests.computeIfAbsent(new RequestKey(name, status, tier), this::requestCounter);
                    }
                }
                model(name);
            }
        }
    }

    private Counter requestCounter(RequestKey key) {
        return Counter.builder("cocoon.requests")
                .tag("model", key.model())
                .tag("status", Integer.toString(key.status()))
                .tag("tier", key.tier().wireName())
                .description("Requests that reached the relay, by the HTTP status sent (200 also for streams that failed in-band)")
                .register(meters);
    }
}
