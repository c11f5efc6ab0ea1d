package org.cocoonjvm.gateway.registry;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.common.GrpcStatus;
import java.net.URI;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.gateway.attestation.AttestationState;
import org.cocoonjvm.protocol.PrintableIds;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.hello.HelloLimits;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ServiceTier;

/**
 * The workers this gateway may route to, and the routing rule. Written by registration sessions,
 * read by every request; a concurrent map and per-worker atomics keep both sides lock-free.
 */
public final class WorkerRegistry {
    /**
     * How long after its last worker left a model still counts as served for a while rather than
     * unknown: a worker restarting (a deploy, a crash) is back within seconds.
     */
    static final long RECENTLY_SERVED_NANOS = TimeUnit.MINUTES.toNanos(10);
    /** Seconds a client is told to wait when a recently served model has no worker, and none is known to be on its way back. */
    static final int RECENTLY_SERVED_RETRY_AFTER_S = 5;
    /**
     * How long a worker that left to come back is expected to take, until one has: it reconnects
     * at once, and its new channel opens in well under a second off chain and on the emulator.
     */
    static final long DEFAULT_RETURN_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** How much later than expected a returning worker may be before the model counts as merely recently served. */
    static final long RETURN_GRACE_NANOS = TimeUnit.SECONDS.toNanos(RECENTLY_SERVED_RETRY_AFTER_S);
    /**
     * How many heartbeat intervals a worker may stay silent before it counts as gone: one late
     * heartbeat (a busy event loop, a slow network) must not take a worker out of routing.
     */
    static final int SILENT_HEARTBEATS = 3;
    /** Requests a worker may have in flight per unit of capacity before default-tier routing skips it. */
    static final int OVERCOMMIT = 4;
    /** An affine worker is preferred while its in-flight count is within this of the least loaded. */
    static final int AFFINITY_SLACK = 2;
    private static final int AFFINITY_ENTRIES = 10_000;

    /** Why a registration ends, as far as the gateway can tell when it does. */
    public enum Departure {
        /** The worker closed its payment channel and said it opens a new session for a new one at once. */
        RETURNING,
        /** Anything else: a worker stopping, crashing, refused or cut off. */
        GONE
    }

    private final ConcurrentHashMap<String, RegisteredWorker> workers = new ConcurrentHashMap<>();
    /**
     * model name, and name@hash -> what the gateway knows of it: kept while a worker serves it and
     * for {@link #RECENTLY_SERVED_NANOS} after the last one left, then pruned by a later departure.
     */
    private final ConcurrentHashMap<String, KnownModel> known = new ConcurrentHashMap<>();
    private final LongSupplier nanoClock;
    /** For when a model was first served ({@code created} in {@code /v1/models}): wall time, not the routing clock. */
    private final Clock clock;
    private final long heartbeatIntervalMs;
    /** A worker silent for this long is skipped until it speaks again. */
    private final long staleAfterNanos;
    private final int flexReservePercent;
    private final Cordons cordons;
    /** Where {@link #known} outlives a restart. */
    private final ServedModels served;
    /** prefix hash -> the worker that last served it (its KV cache may still hold the prefix). */
    private final ConcurrentHashMap<Long, String> affinity = new ConcurrentHashMap<>();

    /**
     * A model clients may ask for: some registered worker serves it, or one did in the last
     * {@link #RECENTLY_SERVED_NANOS} (requests for it are then 503, not 404).
     *
     * @param model           as the latest registration serving it announced it (hash, context window)
     * @param createdSeconds  Unix time the gateway first saw it served; kept for as long as the model stays known
     * @param lastServedNanos when a registration serving it last came or went: while none serves it, when the last one left
     * @param returning       the last registration that left did so as {@link Departure#RETURNING}
     * @param returnNanos     how long the model went unserved after its last such departure; {@link #DEFAULT_RETURN_NANOS} before one
     */
    public record KnownModel(ModelRef model, long createdSeconds, long lastServedNanos, boolean returning, long returnNanos) {}

    /**
     * @param flexReservePercent see {@link #flexRoom}
     * @param clock              wall time, for when each model was first served
     */
    public WorkerRegistry(long heartbeatIntervalMs, int flexReservePercent, LongSupplier nanoClock, Clock clock) {
        this(heartbeatIntervalMs, flexReservePercent, nanoClock, clock, Cordons.inMemory(), ServedModels.inMemory());
    }

    /** @param served the models known before the last stop, and where to keep them for the next start */
    public WorkerRegistry(long heartbeatIntervalMs, int flexReservePercent, LongSupplier nanoClock, Clock clock,
                          Cordons cordons, ServedModels served) {
        this.cordons = cordons;
        this.served = served;
        this.heartbeatIntervalMs = heartbeatIntervalMs;
        this.flexReservePercent = flexReservePercent;
        this.nanoClock = nanoClock;
        this.clock = clock;
        this.staleAfterNanos = TimeUnit.MILLISECONDS.toNanos(SILENT_HEARTBEATS * heartbeatIntervalMs);
        restore();
    }

    /**
     * Knows again the models the last run saved as served within {@link #RECENTLY_SERVED_NANOS} of
     * now: requests for them are 503 until their workers are back, and their {@code created} stays.
     * How long a return took is measured again (from {@link #DEFAULT_RETURN_NANOS}).
     */
    private void restore() {
        long now = nanoClock.getAsLong();
        long wallNow = clock.millis();
        for (ServedModels.Saved saved : served.loaded()) {
            long away = TimeUnit.MILLISECONDS.toNanos(Math.max(0, wallNow - saved.lastServedMillis()));
            if (away <= RECENTLY_SERVED_NANOS) {
                known.put(saved.key(), new KnownModel(saved.model(), saved.createdSeconds(), now - away, false,
                        DEFAULT_RETURN_NANOS));
            }
        }
    }

    /** Saves the known models for the next start, off the event loop; nothing without a file. */
    public Future<Void> saveModels(Vertx vertx) {
        return served.save(vertx, this::servedSnapshot);
    }

    /** {@link #saveModels} every {@link ServedModels#SAVE_EVERY_MS}: the timer to cancel at the stop, -1 without a file. */
    public long saveModelsEvery(Vertx vertx) {
        return served.saveEvery(vertx, this::servedSnapshot);
    }

    /** The models known now, by key; one a worker serves as last served now, so a start soon after a crash knows it. */
    private List<ServedModels.Saved> servedSnapshot() {
        long now = nanoClock.getAsLong();
        long wallNow = clock.millis();
        List<ServedModels.Saved> snapshot = new ArrayList<>();
        known.forEach((key, model) -> {
            long away = servedByAnyBut(key, null) ? 0 : now - model.lastServedNanos();
            if (away <= RECENTLY_SERVED_NANOS) {
                snapshot.add(new ServedModels.Saved(key, model.model(), model.createdSeconds(),
                        wallNow - TimeUnit.NANOSECONDS.toMillis(away)));
            }
        });
        snapshot.sort(Comparator.comparing(ServedModels.Saved::key));
        return snapshot;
    }

    public long heartbeatIntervalMs() {
        return heartbeatIntervalMs;
    }

    /**
     * How long a worker may leave the gateway without an answer before it counts as gone:
     * {@value #SILENT_HEARTBEATS} heartbeat intervals, for heartbeats, PINGs and a new call's connection alike.
     */
    public long silenceLimitMs() {
        return TimeUnit.NANOSECONDS.toMillis(staleAfterNanos);
    }

    /** A worker neither attested nor paid over a channel. */
    public RegisteredWorker register(Hello hello) throws WorkerRefusedException {
        return register(hello, AttestationState.NONE, null);
    }

    /**
     * Adds a worker. A worker id names one worker: a session whose Hello carries the same payment
     * key as the live one holding the id replaces it (the same worker restarted and reconnecting
     * before its old session's end was noticed; the old session's own end then removes nothing),
     * any other is refused while the id's session lives, so that nobody who merely knows a
     * worker's id can take its traffic (and its channel's place in {@code /admin/workers}). The
     * payment key is what Hello carries that only that worker can use (it signs the channel's
     * states with it); a Hello without one never replaces anybody.
     *
     * @param attestation what the gateway verified of the worker's evidence
     * @param channel     the channel that pays the worker; null when payments are disabled
     * @throws WorkerRefusedException {@code invalid_hello} naming what is wrong with the Hello;
     *                                {@code worker_id_in_use} when another worker holds the id
     */
    public RegisteredWorker register(Hello hello, AttestationState attestation, WorkerChannel channel)
            throws WorkerRefusedException {
        checkId(hello.getWorkerId());
        if (hello.getModelsCount() == 0) {
            throw WorkerRefusedException.invalid("invalid_hello", "the worker announced no models");
        }
        if (hello.getCapacity() == 0) {
            throw WorkerRefusedException.invalid("invalid_hello", "the worker announced capacity 0");
        }
        checkAnnounced("capacity", hello.getCapacity(), HelloLimits.MAX_CAPACITY);
        for (ModelRef m : hello.getModelsList()) {
            checkAnnounced("max_context of " + m.getName(), m.getMaxContext(), HelloLimits.MAX_CONTEXT);
            checkAnnounced("chat_template_tokens of " + m.getName(), m.getChatTemplateTokens(), HelloLimits.MAX_TEMPLATE_TOKENS);
            checkAnnounced("chat_message_tokens of " + m.getName(), m.getChatMessageTokens(), HelloLimits.MAX_TEMPLATE_TOKENS);
        }
        SocketAddress address = parseEndpoint(hello.getEndpoint());
        checkEndpointFree(hello, address);
        RegisteredWorker worker = new RegisteredWorker(hello, attestation, address, channel, nanoClock.getAsLong());
        RegisteredWorker holder = workers.compute(worker.id(), (id, old) -> old == null || sameWorker(old.hello(), hello) ? worker : old);
        if (holder != worker) {
            throw idInUse(hello);
        }
        long now = worker.registeredAtNanos();
        long seconds = clock.instant().getEpochSecond();
        for (ModelRef m : worker.models()) {
            for (String key : ModelKeys.keys(m)) {
                // A model forgotten (gone past the window, not yet pruned) comes back as a new one.
                known.compute(key, (k, old) -> old == null || (now - old.lastServedNanos() > RECENTLY_SERVED_NANOS
                        && !servedByAnyBut(k, worker)) ? new KnownModel(m, seconds, now, false, DEFAULT_RETURN_NANOS)
                        : new KnownModel(m, old.createdSeconds(), now, false, old.returning() && !servedByAnyBut(k, worker)
                        // Measured, so that the next wait it announces is what a return takes here (on chain, a
                        // new channel is a deploy that may take seconds).
                        ? now - old.lastServedNanos() : old.returnNanos()));
            }
        }
        return worker;
    }

    /** Past {@link HelloLimits}: a hold no client could meet, or routing arithmetic that overflows. */
    private static void checkAnnounced(String what, int value, long limit) throws WorkerRefusedException {
        if (Integer.toUnsignedLong(value) > limit) {
            throw WorkerRefusedException.invalid("invalid_hello", "the worker announced " + what + " "
                    + Integer.toUnsignedLong(value) + ", past the " + limit + " this gateway accepts");
        }
    }

    /**
     * Refuses a worker id the gateway could not write as it is into its text log and metric labels:
     * an empty one, one past {@link PrintableIds#MAX_WORKER_ID} characters, or one with anything but
     * printable ASCII (a newline in one forged whole lines of the JSON access log). {@link #register}
     * checks it; a session checks it first, so that its refusals' log lines name a valid id.
     */
    public static void checkId(String id) throws WorkerRefusedException {
        if (id.isEmpty()) {
            throw WorkerRefusedException.invalid("invalid_hello", "worker_id is empty");
        }
        String problem = PrintableIds.problem(id, PrintableIds.MAX_WORKER_ID);
        if (problem != null) {
            throw WorkerRefusedException.invalid("invalid_hello", "worker_id " + problem);
        }
    }

    /** Whether a registered worker serves {@code model} (a name, or name@hash), {@code but} aside (null: none aside). */
    private boolean servedByAnyBut(String model, RegisteredWorker but) {
        for (RegisteredWorker w : workers.values()) {
            if (w != but && w.serves(model)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The check {@link #register} makes, made early: before a channel is opened (on chain,
     * deployed and funded) for a worker that could not register anyway.
     */
    public void checkIdFree(Hello hello) throws WorkerRefusedException {
        RegisteredWorker holder = workers.get(hello.getWorkerId());
        if (holder != null && !sameWorker(holder.hello(), hello)) {
            throw idInUse(hello);
        }
        checkEndpointFree(hello, parseEndpoint(hello.getEndpoint()));
    }

    /**
     * The gateway sends a worker's requests to the endpoint its Hello names, and checks there only
     * that some acceptable worker answers: a second worker announcing a registered one's endpoint
     * was credited with its work (audit I, I-6). An endpoint is one worker's, as an id is.
     */
    private void checkEndpointFree(Hello hello, SocketAddress address) throws WorkerRefusedException {
        for (RegisteredWorker w : workers.values()) {
            // The same id is the id check's: the same worker reconnecting, or worker_id_in_use.
            if (w.address().equals(address) && !w.id().equals(hello.getWorkerId())) {
                throw new WorkerRefusedException(GrpcStatus.ALREADY_EXISTS, "endpoint_in_use", "endpoint " + hello.getEndpoint()
                        + " is registered by worker '" + w.id() + "'; each worker announces its own (--advertise), and one"
                        + " restarted under another id gets it once its old session ends (" + SILENT_HEARTBEATS + " heartbeat intervals)");
            }
        }
    }

    private static boolean sameWorker(Hello registered, Hello claimant) {
        return !claimant.getPaymentPublicKey().isEmpty() && claimant.getPaymentPublicKey().equals(registered.getPaymentPublicKey());
    }

    private static WorkerRefusedException idInUse(Hello hello) {
        return new WorkerRefusedException(GrpcStatus.ALREADY_EXISTS, "worker_id_in_use", "worker id '" + hello.getWorkerId()
                + "' is in use by another worker (another payment key); pick another --id, or, if that was this worker"
                + " before a restart with a new payment key, it is free once the old session ends (" + SILENT_HEARTBEATS
                + " heartbeat intervals)");
    }

    /** Removes this registration only, not a newer one that replaced it. */
    public void remove(RegisteredWorker worker, Departure departure) {
        if (workers.remove(worker.id(), worker)) {
            long now = nanoClock.getAsLong();
            for (ModelRef m : worker.models()) {
                for (String key : ModelKeys.keys(m)) {
                    known.computeIfPresent(key, (k, old) -> new KnownModel(old.model(), old.createdSeconds(), now,
                            departure == Departure.RETURNING, old.returnNanos()));
                }
            }
            // Bounded by what is served and recent churn. A value replaced meanwhile (a registration) is kept.
            known.entrySet().removeIf(e -> now - e.getValue().lastServedNanos() > RECENTLY_SERVED_NANOS
                    && !servedByAnyBut(e.getKey(), null));
        }
    }

    /**
     * The models {@link #pick} does not answer {@code MODEL_NOT_FOUND} for, by name: served by a
     * registered worker (healthy or not), or by one that left in the last {@link #RECENTLY_SERVED_NANOS}.
     */
    public List<KnownModel> knownModels() {
        long now = nanoClock.getAsLong();
        List<KnownModel> models = new ArrayList<>();
        known.forEach((key, model) -> {
            if (key.equals(model.model().getName())
                    && (now - model.lastServedNanos() <= RECENTLY_SERVED_NANOS || servedByAnyBut(key, null))) {
                models.add(model);
            }
        });
        return models;
    }

    /**
     * Whether {@code model} (a name or name@hash) is one {@link #pick} does not answer
     * {@code MODEL_NOT_FOUND} for: as {@link #knownModels}, without building the list.
     */
    public boolean knows(String model) {
        KnownModel known = this.known.get(model);
        return known != null
                && (nanoClock.getAsLong() - known.lastServedNanos() <= RECENTLY_SERVED_NANOS || servedByAnyBut(model, null));
    }

    /**
     * The name of the known model {@code model} asks for ({@code name} for {@code name@hash});
     * {@code model} itself when no model by that name or name@hash is known.
     */
    public String modelName(String model) {
        KnownModel known = this.known.get(model);
        return known == null ? model : known.model().getName();
    }

    public void heartbeat(RegisteredWorker worker, WorkerLoad load) {
        worker.heartbeat(load, nanoClock.getAsLong());
    }

    /** {@code worker} broke a call: counted towards its breaker, on this registry's clock. */
    public void failed(RegisteredWorker worker) {
        worker.failed(nanoClock.getAsLong());
    }

    public Collection<RegisteredWorker> all() {
        return workers.values();
    }

    public boolean healthy(RegisteredWorker worker) {
        return nanoClock.getAsLong() - worker.lastSeenNanos() <= staleAfterNanos;
    }

    public boolean cordoned(String workerId) {
        return cordons.contains(workerId);
    }

    /** The operator's, through {@code /admin/workers/{id}/cordon}. */
    public Cordons cordons() {
        return cordons;
    }

    /** Healthy and not cordoned: what {@code /v1/models} counts as available. */
    public boolean available(RegisteredWorker worker) {
        return healthy(worker) && !cordoned(worker.id());
    }

    /**
     * What routing needs to know about a request.
     *
     * @param exclude     workers already tried for this request
     * @param affinityKey hash of the prompt's stable prefix (system prompt), 0 for none
     */
    public record Route(String model, ServiceTier tier, Set<String> exclude, long affinityKey) {}

    /**
     * Picks a worker: among healthy workers serving the model, not cordoned, whose channel has cap left and is
     * not being closed, with a closed circuit breaker and room (flex requests only below
     * {@link #flexRoom}, default ones up to {@value #OVERCOMMIT}× capacity), the one with the fewest
     * requests in flight per unit of capacity, weighted by its measured speed; the worker that last
     * served the same prompt prefix wins while it is within {@value #AFFINITY_SLACK} requests of
     * that; ties go to a random one.
     *
     * @return null when every candidate was already tried
     * @throws ApiException {@code MODEL_NOT_FOUND} when no worker serves the model, nor did in the
     *                      last {@link #RECENTLY_SERVED_NANOS} ({@code NO_CAPACITY} if one did);
     *                      {@code RATE_LIMITED} for flex when every worker's flex room is used;
     *                      {@code NO_CAPACITY} when no worker can take it now (while none is full
     *                      and the breakers of the healthy ones are open, with {@code Retry-After}
     *                      until the first half-opens)
     */
    public RegisteredWorker pick(Route route) {
        long now = nanoClock.getAsLong();
        Scan scan = scan(route, now);
        if (!scan.served) {
            throw notServed(route.model(), now);
        }
        if (scan.candidates.isEmpty()) {
            if (scan.excludedSome) {
                return null;
            }
            throw noCandidate(route, scan);
        }
        RegisteredWorker chosen = leastLoaded(scan.candidates, scan.meanSpeed());
        return route.affinityKey() == 0 ? chosen : preferAffine(route.affinityKey(), scan.candidates, chosen);
    }

    /** One pass over the workers for a route: those it may go to, and why each other one serving the model may not. */
    private static final class Scan {
        /** Healthy, routable workers with room for the route's tier. */
        final List<RegisteredWorker> candidates = new ArrayList<>();
        /** Some registered worker serves the model, healthy or not. */
        boolean served;
        /** Some worker serving it was already tried for this request. */
        boolean excludedSome;
        /** Some routable worker had no room left for the route's tier. */
        boolean full;
        /** Healthy workers whose breaker is open, and the time until the first of them half-opens. */
        int failing;
        long untilHalfOpen = Long.MAX_VALUE;
        /** Healthy workers closing their payment channel: back with a new one within seconds. */
        int closing;
        /** Healthy workers the operator cordoned. */
        int cordoned;
        /** The candidates' measured speeds, those that have one. */
        double speedSum;
        int speedCount;

        void candidate(RegisteredWorker w) {
            candidates.add(w);
            if (w.speed() > 0) {
                speedSum += w.speed();
                speedCount++;
            }
        }

        double meanSpeed() {
            return speedCount == 0 ? 1 : speedSum / speedCount;
        }
    }

    /** Whether a worker takes new requests now, and if not, why: one rule for routing, /metrics and /admin. */
    public enum Standing {
        /** Its heartbeats are late: skipped until it speaks again. */
        SILENT,
        /** The operator took it out of routing. */
        CORDONED,
        /** Its channel's fees reached the deposit cap: it would serve unpaid, then hold the request at its credit window. */
        CAP_REACHED,
        /** Its channel pays only what runs on it now, then closes (cooperatively, or on chain without the gateway). */
        CHANNEL_CLOSING,
        /** Its circuit breaker is open after failures. */
        CIRCUIT_OPEN,
        ROUTABLE
    }

    public Standing standing(RegisteredWorker w, long nowNanos) {
        WorkerChannel channel = w.channel();
        if (!healthy(w)) {
            return Standing.SILENT;
        } else if (cordons.contains(w.id())) {
            return Standing.CORDONED;
        } else if (channel != null && channel.capReached()) {
            return Standing.CAP_REACHED;
        } else if (channel != null && (channel.closing() || channel.closingOnChain())) {
            return Standing.CHANNEL_CLOSING;
        } else if (w.breakerOpen(nowNanos)) {
            return Standing.CIRCUIT_OPEN;
        }
        return Standing.ROUTABLE;
    }

    private Scan scan(Route route, long now) {
        Scan scan = new Scan();
        for (RegisteredWorker w : workers.values()) {
            if (!w.serves(route.model())) {
                continue;
            }
            scan.served = true;
            if (route.exclude().contains(w.id())) {
                scan.excludedSome = true;
                continue;
            }
            switch (standing(w, now)) {
                case SILENT, CAP_REACHED -> { }
                case CORDONED -> scan.cordoned++;
                case CHANNEL_CLOSING -> scan.closing++;
                case CIRCUIT_OPEN -> {
                    scan.failing++;
                    scan.untilHalfOpen = Math.min(scan.untilHalfOpen, w.breakerOpenUntilNanos() - now);
                }
                case ROUTABLE -> {
                    int room = route.tier() == ServiceTier.FLEX ? flexRoom(w.capacity()) : w.capacity() * OVERCOMMIT;
                    if (w.inFlight() < room) {
                        scan.candidate(w);
                    } else {
                        scan.full = true;
                    }
                }
            }
        }
        return scan;
    }

    /** Why no registered worker serves {@code model}: gone for a moment (503, with when to retry), or unknown (404). */
    private ApiException notServed(String model, long now) {
        KnownModel known = this.known.get(model);
        long away = known == null ? 0 : now - known.lastServedNanos();
        if (known != null && known.returning() && away <= known.returnNanos() + RETURN_GRACE_NANOS) {
            // The OpenAI SDKs wait as long as Retry-After says: 5 s kept them waiting for a worker
            // back in 0.25 s after every threshold close (audit K, K-4).
            int wait = secondsUntil(known.returnNanos() - away);
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker serves " + ApiException.shown(model)
                    + " right now: the last one left " + TimeUnit.NANOSECONDS.toSeconds(away) + " s ago to settle its"
                    + " payment channel, and is expected back within " + wait + " s; retry then.", wait);
        }
        if (known != null && away <= RECENTLY_SERVED_NANOS) {
            // Served minutes ago: a retryable 503, not a 404 that clients take as final.
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker serves " + ApiException.shown(model)
                    + " right now (the last one left " + TimeUnit.NANOSECONDS.toSeconds(away)
                    + " s ago); retry shortly.", RECENTLY_SERVED_RETRY_AFTER_S);
        }
        return new ApiException(ErrorKind.MODEL_NOT_FOUND, "model",
                "The model " + ApiException.shown(model) + " does not exist or no worker serves it; see GET /v1/models.");
    }

    /** Why workers serve the route's model, none was tried, and none can take it now; in this order of precedence. */
    private static ApiException noCandidate(Route route, Scan scan) {
        if (scan.full && route.tier() == ServiceTier.FLEX) {
            return ApiException.retryLater(ErrorKind.RATE_LIMITED, "Flex capacity for '" + route.model()
                    + "' is exhausted; retry later or use the default service tier.", 1);
        }
        if (scan.full) {  // a busy worker takes it in a moment, whatever keeps the others
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now.", 1);
        }
        if (scan.failing > 0) {
            // Retry-After 1 would spend a client's retries while no worker can be tried: come back when one can.
            int wait = secondsUntil(scan.untilHalfOpen);
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now: "
                    + (scan.failing == 1 ? "its worker is" : "its " + scan.failing + " workers are") + " failing (circuit breaker"
                    + " open after " + RegisteredWorker.BREAKER_THRESHOLD + " failures in a row); "
                    + (scan.failing == 1 ? "it is" : "the first is") + " tried again in " + wait + " s.", wait);
        }
        if (scan.closing > 0) {
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now: "
                    + (scan.closing == 1 ? "its worker is settling a payment channel, and takes"
                    : "its " + scan.closing + " workers are settling payment channels, and take")
                    + " new requests again once those running on it are done; retry shortly.", 1);
        }
        if (scan.cordoned > 0) {
            // Only the operator brings it back: no time to promise, so the hint a client's backoff starts from.
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now: "
                    + (scan.cordoned == 1 ? "its worker is" : "its " + scan.cordoned + " workers are")
                    + " taken out of service by the gateway's operator.", RECENTLY_SERVED_RETRY_AFTER_S);
        }
        return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now.", 1);
    }

    /**
     * The worker that last served the prompt prefix {@code affinityKey}, while it is among the
     * candidates within {@value #AFFINITY_SLACK} requests of the least loaded; else {@code leastLoaded}.
     * Remembers the choice for the prefix.
     */
    private RegisteredWorker preferAffine(long affinityKey, List<RegisteredWorker> candidates, RegisteredWorker leastLoaded) {
        String preferred = affinity.get(affinityKey);
        int minInFlight = candidates.stream().mapToInt(RegisteredWorker::inFlight).min().orElse(0);
        RegisteredWorker chosen = leastLoaded;
        for (RegisteredWorker w : candidates) {
            if (w.id().equals(preferred) && w.inFlight() <= minInFlight + AFFINITY_SLACK) {
                chosen = w;
            }
        }
        if (affinity.size() > AFFINITY_ENTRIES) {
            affinity.clear();  // crude bound: a cold cache costs one re-prefill, not correctness
        }
        affinity.put(affinityKey, chosen.id());
        return chosen;
    }

    /** Whole seconds until {@code nanos} have passed, rounded up. */
    private static int secondsUntil(long nanos) {
        return (int) Math.max(1, (nanos + 999_999_999) / 1_000_000_000);
    }

    /**
     * How many requests a worker of {@code capacity} may have in flight when a flex request is
     * routed to it: its capacity less a reserve of {@code flexReservePercent} of it (rounded down,
     * at least one slot, never the last), so flex never holds every batch slot and a default
     * request starts at once instead of waiting for a bulk sequence to end. The price: while no
     * default traffic comes, flex runs on that much less of the capacity. A reserve that lent
     * itself to flex while default traffic was quiet would give the wait back to the first default
     * request after a quiet spell, for as long as the longest flex sequence; a fixed one bounds it.
     */
    int flexRoom(int capacity) {
        if (flexReservePercent == 0) {
            return capacity;
        }
        int reserve = Math.min(capacity - 1, Math.max(1, capacity * flexReservePercent / 100));
        return capacity - reserve;
    }

    private static RegisteredWorker leastLoaded(List<RegisteredWorker> candidates, double meanSpeed) {
        List<RegisteredWorker> best = new ArrayList<>(2);
        double bestScore = Double.MAX_VALUE;
        for (RegisteredWorker w : candidates) {
            double relativeSpeed = w.speed() > 0 ? w.speed() / meanSpeed : 1;
            double score = (w.inFlight() + 1) / (w.capacity() * relativeSpeed);
            if (score < bestScore) {
                best.clear();
                bestScore = score;
            }
            if (score == bestScore) {
                best.add(w);
            }
        }
        return best.get(best.size() == 1 ? 0 : ThreadLocalRandom.current().nextInt(best.size()));
    }

    /**
     * The most tokens the chat template of any worker serving the model adds to a conversation of
     * {@code messages} messages besides their text (ModelRef's chat_template_tokens and
     * chat_message_tokens); 0 when none serves it or none says.
     */
    public long chatTemplateTokens(String model, int messages) {
        long max = 0;
        for (RegisteredWorker w : workers.values()) {
            for (ModelRef m : w.models()) {
                if (ModelKeys.matches(m, model)) {
                    max = Math.max(max, chatTemplateTokens(m, messages));
                }
            }
        }
        return max;
    }

    /** What {@code m}'s chat template adds to a conversation of {@code messages} messages, as its worker announced it. */
    public static long chatTemplateTokens(ModelRef m, int messages) {
        return Integer.toUnsignedLong(m.getChatTemplateTokens())
                + (long) Math.max(0, messages - 1) * Integer.toUnsignedLong(m.getChatMessageTokens());
    }

    /** The largest context window among workers serving the model; 0 when none does. */
    public int maxContext(String model) {
        int max = 0;
        for (RegisteredWorker w : workers.values()) {
            for (ModelRef m : w.models()) {
                if (ModelKeys.matches(m, model)) {
                    max = Math.max(max, m.getMaxContext());
                }
            }
        }
        return max;
    }

    /** Now, on the registry's clock. */
    public long nanoTime() {
        return nanoClock.getAsLong();
    }

    private static SocketAddress parseEndpoint(String endpoint) throws WorkerRefusedException {
        URI uri;
        try {
            uri = URI.create(endpoint);
        } catch (IllegalArgumentException e) {
            throw WorkerRefusedException.invalid("invalid_hello", "endpoint is not a URI: " + endpoint);
        }
        // https: an attested worker serves RA-TLS; the gateway's client decides TLS, not the scheme.
        if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null || uri.getPort() <= 0) {
            throw WorkerRefusedException.invalid("invalid_hello", "endpoint must look like http(s)://host:port, got: " + endpoint);
        }
        return SocketAddress.inetSocketAddress(uri.getPort(), uri.getHost());
    }
}
