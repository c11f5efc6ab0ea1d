package org.cocoonjvm.gateway.registry;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import java.time.Clock;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.gateway.attestation.AttestationState;
import org.cocoonjvm.protocol.PrintableIds;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ServiceTier;

/**
 * The workers this gateway may route to, and the routing rule. Written by registration sessions,
 * read by every request; a concurrent map and per-worker atomics keep both sides lock-free.
 *
 * <p>The registry owns the workers and the rule's order ({@link #pick}, {@link #standing}); its
 * parts own the rest: {@link KnownModels} the models clients may ask for (and 404 or 503 when none
 * serves one), {@link HelloChecks} what a Hello must pass to register, {@link RouteScan} one pick's
 * pass over the workers (the least loaded, or why none can take the request), and
 * {@link PrefixAffinity} which worker last served each prompt prefix.
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

    /** Why a registration ends, as far as the gateway can tell when it does. */
    public enum Departure {
        /** The worker closed its payment channel and said it opens a new session for a new one at once. */
        RETURNING,
        /** Anything else: a worker stopping, crashing, refused or cut off. */
        GONE
    }

    private final ConcurrentHashMap<String, RegisteredWorker> workers = new ConcurrentHashMap<>();
    /** The models clients may ask for, and where they outlive a restart. */
    private final KnownModels known;
    /** What a Hello must pass to register, against the workers registered now. */
    private final HelloChecks checks = new HelloChecks(workers);
    private final LongSupplier nanoClock;
    private final long heartbeatIntervalMs;
    /** A worker silent for this long is skipped until it speaks again. */
    private final long staleAfterNanos;
    private final int flexReservePercent;
    private final Cordons cordons;
    /** The worker that last served each prompt prefix. */
    private final PrefixAffinity affinity = new PrefixAffinity();

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
        this.heartbeatIntervalMs = heartbeatIntervalMs;
        this.flexReservePercent = flexReservePercent;
        this.nanoClock = nanoClock;
        this.staleAfterNanos = TimeUnit.MILLISECONDS.toNanos(SILENT_HEARTBEATS * heartbeatIntervalMs);
        this.known = new KnownModels(workers.values(), served, nanoClock, clock);
    }

    /** Saves the known models for the next start, off the event loop; nothing without a file. */
    public Future<Void> saveModels(Vertx vertx) {
        return known.save(vertx);
    }

    /** {@link #saveModels} every {@link ServedModels#SAVE_EVERY_MS}: the timer to cancel at the stop, -1 without a file. */
    public long saveModelsEvery(Vertx vertx) {
        return known.saveEvery(vertx);
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
        SocketAddress address = checks.check(hello);
        RegisteredWorker worker = new RegisteredWorker(hello, attestation, address, channel, nanoClock.getAsLong());
        RegisteredWorker holder = workers.compute(worker.id(), (id, old) -> old == null || HelloChecks.sameWorker(old.hello(), hello) ? worker : old);
        if (holder != worker) {
            throw HelloChecks.idInUse(hello);
        }
        known.registered(worker);
        return worker;
    }

    /**
     * Refuses a worker id the gateway could not write as it is into its text log and metric labels:
     * an empty one, one past {@link PrintableIds#MAX_WORKER_ID} characters, or one with anything but
     * printable ASCII (a newline in one forged whole lines of the JSON access log). {@link #register}
     * checks it; a session checks it first, so that its refusals' log lines name a valid id.
     */
    public static void checkId(String id) throws WorkerRefusedException {
        HelloChecks.checkId(id);
    }

    /**
     * The check {@link #register} makes, made early: before a channel is opened (on chain,
     * deployed and funded) for a worker that could not register anyway.
     */
    public void checkIdFree(Hello hello) throws WorkerRefusedException {
        checks.checkIdFree(hello);
    }

    /** Removes this registration only, not a newer one that replaced it. */
    public void remove(RegisteredWorker worker, Departure departure) {
        if (workers.remove(worker.id(), worker)) {
            known.removed(worker, departure);
        }
    }

    /**
     * The models {@link #pick} does not answer {@code MODEL_NOT_FOUND} for, by name: served by a
     * registered worker (healthy or not), or by one that left in the last {@link #RECENTLY_SERVED_NANOS}.
     */
    public List<KnownModel> knownModels() {
        return known.list();
    }

    /**
     * Whether {@code model} (a name or name@hash) is one {@link #pick} does not answer
     * {@code MODEL_NOT_FOUND} for: as {@link #knownModels}, without building the list.
     */
    public boolean knows(String model) {
        return known.knows(model);
    }

    /**
     * The name of the known model {@code model} asks for ({@code name} for {@code name@hash});
     * {@code model} itself when no model by that name or name@hash is known.
     */
    public String modelName(String model) {
        return known.modelName(model);
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
     * served the same prompt prefix wins while it is within {@value PrefixAffinity#AFFINITY_SLACK} requests of
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
        RouteScan scan = scan(route, now);
        if (!scan.served) {
            throw known.notServed(route.model(), now);
        }
        if (scan.candidates.isEmpty()) {
            if (scan.excludedSome) {
                return null;
            }
            throw scan.refusal(route);
        }
        RegisteredWorker chosen = scan.leastLoaded();
        return route.affinityKey() == 0 ? chosen : affinity.prefer(route.affinityKey(), scan.candidates, chosen);
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

    /** One pass over the workers for a route: those it may go to, and why each other one serving the model may not. */
    private RouteScan scan(Route route, long now) {
        RouteScan scan = new RouteScan();
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

    /** Whole seconds until {@code nanos} have passed, rounded up. */
    static int secondsUntil(long nanos) {
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
}
