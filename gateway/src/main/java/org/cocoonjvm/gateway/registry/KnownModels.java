package org.cocoonjvm.gateway.registry;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.cocoonjvm.gateway.registry.WorkerRegistry.Departure;
import org.cocoonjvm.gateway.registry.WorkerRegistry.KnownModel;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;

import static org.cocoonjvm.gateway.registry.WorkerRegistry.DEFAULT_RETURN_NANOS;
import static org.cocoonjvm.gateway.registry.WorkerRegistry.RECENTLY_SERVED_NANOS;
import static org.cocoonjvm.gateway.registry.WorkerRegistry.RECENTLY_SERVED_RETRY_AFTER_S;
import static org.cocoonjvm.gateway.registry.WorkerRegistry.RETURN_GRACE_NANOS;
import static org.cocoonjvm.gateway.registry.WorkerRegistry.secondsUntil;

/**
 * {@link WorkerRegistry}'s known models: those clients may ask for, as some registered worker
 * serves them or one did in the last {@link WorkerRegistry#RECENTLY_SERVED_NANOS}, with when each
 * was first served and how long a returning worker takes; kept across restarts by
 * {@link ServedModels}. Apart from the registry so that this map has one owner, and the registry
 * keeps the workers and routing; it reads the registry's workers (a live view) to tell whether any
 * still serves a model.
 *
 * <p>Written by registrations and departures, read by every request, from any thread: a
 * concurrent map of immutable {@link KnownModel}s, updated by compute, as before.
 */
final class KnownModels {
    /**
     * model name, and name@hash -> what the gateway knows of it: kept while a worker serves it and
     * for {@link WorkerRegistry#RECENTLY_SERVED_NANOS} after the last one left, then pruned by a
     * later departure.
     */
    private final ConcurrentHashMap<String, KnownModel> models = new ConcurrentHashMap<>();
    /** The registry's workers, live. */
    private final Collection<RegisteredWorker> workers;
    /** Where {@link #models} outlives a restart. */
    private final ServedModels served;
    private final LongSupplier nanoClock;
    /** For when a model was first served ({@code created} in {@code /v1/models}): wall time, not the routing clock. */
    private final Clock clock;

    KnownModels(Collection<RegisteredWorker> workers, ServedModels served, LongSupplier nanoClock, Clock clock) {
        this.workers = workers;
        this.served = served;
        this.nanoClock = nanoClock;
        this.clock = clock;
        restore();
    }

    /**
     * Knows again the models the last run saved as served within
     * {@link WorkerRegistry#RECENTLY_SERVED_NANOS} of now: requests for them are 503 until their
     * workers are back, and their {@code created} stays. How long a return took is measured again
     * (from {@link WorkerRegistry#DEFAULT_RETURN_NANOS}).
     */
    private void restore() {
        long now = nanoClock.getAsLong();
        long wallNow = clock.millis();
        for (ServedModels.Saved saved : served.loaded()) {
            long away = TimeUnit.MILLISECONDS.toNanos(Math.max(0, wallNow - saved.lastServedMillis()));
            if (away <= RECENTLY_SERVED_NANOS) {
                models.put(saved.key(), new KnownModel(saved.model(), saved.createdSeconds(), now - away, false,
                        DEFAULT_RETURN_NANOS));
            }
        }
    }

    /** {@link WorkerRegistry#saveModels}. */
    Future<Void> save(Vertx vertx) {
        return served.save(vertx, this::servedSnapshot);
    }

    /** {@link WorkerRegistry#saveModelsEvery}. */
    long saveEvery(Vertx vertx) {
        return served.saveEvery(vertx, this::servedSnapshot);
    }

    /** The models known now, by key; one a worker serves as last served now, so a start soon after a crash knows it. */
    private List<ServedModels.Saved> servedSnapshot() {
        long now = nanoClock.getAsLong();
        long wallNow = clock.millis();
        List<ServedModels.Saved> snapshot = new ArrayList<>();
        models.forEach((key, model) -> {
            long away = servedByAnyBut(key, null) ? 0 : now - model.lastServedNanos();
            if (away <= RECENTLY_SERVED_NANOS) {
                snapshot.add(new ServedModels.Saved(key, model.model(), model.createdSeconds(),
                        wallNow - TimeUnit.NANOSECONDS.toMillis(away)));
            }
        });
        snapshot.sort(Comparator.comparing(ServedModels.Saved::key));
        return snapshot;
    }

    /** {@code worker} has just registered: each model it serves is known, as new or as back. */
    void registered(RegisteredWorker worker) {
        long now = worker.registeredAtNanos();
        long seconds = clock.instant().getEpochSecond();
        for (ModelRef m : worker.models()) {
            for (String key : ModelKeys.keys(m)) {
                // A model forgotten (gone past the window, not yet pruned) comes back as a new one.
                models.compute(key, (k, old) -> old == null || (now - old.lastServedNanos() > RECENTLY_SERVED_NANOS
                        && !servedByAnyBut(k, worker)) ? new KnownModel(m, seconds, now, false, DEFAULT_RETURN_NANOS)
                        : new KnownModel(m, old.createdSeconds(), now, false, old.returning() && !servedByAnyBut(k, worker)
                        // Measured, so that the next wait it announces is what a return takes here (on chain, a
                        // new channel is a deploy that may take seconds).
                        ? now - old.lastServedNanos() : old.returnNanos()));
            }
        }
    }

    /** {@code worker}'s registration, just removed, left as {@code departure} says; models gone past the window are pruned. */
    void removed(RegisteredWorker worker, Departure departure) {
        long now = nanoClock.getAsLong();
        for (ModelRef m : worker.models()) {
            for (String key : ModelKeys.keys(m)) {
                models.computeIfPresent(key, (k, old) -> new KnownModel(old.model(), old.createdSeconds(), now,
                        departure == Departure.RETURNING, old.returnNanos()));
            }
        }
        // Bounded by what is served and recent churn. A value replaced meanwhile (a registration) is kept.
        models.entrySet().removeIf(e -> now - e.getValue().lastServedNanos() > RECENTLY_SERVED_NANOS
                && !servedByAnyBut(e.getKey(), null));
    }

    /** {@link WorkerRegistry#knownModels}. */
    List<KnownModel> list() {
        long now = nanoClock.getAsLong();
        List<KnownModel> known = new ArrayList<>();
        models.forEach((key, model) -> {
            if (key.equals(model.model().getName())
                    && (now - model.lastServedNanos() <= RECENTLY_SERVED_NANOS || servedByAnyBut(key, null))) {
                known.add(model);
            }
        });
        return known;
    }

    /** {@link WorkerRegistry#knows}. */
    boolean knows(String model) {
        KnownModel known = models.get(model);
        return known != null
                && (nanoClock.getAsLong() - known.lastServedNanos() <= RECENTLY_SERVED_NANOS || servedByAnyBut(model, null));
    }

    /** {@link WorkerRegistry#modelName}. */
    String modelName(String model) {
        KnownModel known = models.get(model);
        return known == null ? model : known.model().getName();
    }

    /** Why no registered worker serves {@code model}: gone for a moment (503, with when to retry), or unknown (404). */
    ApiException notServed(String model, long now) {
        KnownModel known = models.get(model);
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

    /** Whether a registered worker serves {@code model} (a name, or name@hash), {@code but} aside (null: none aside). */
    private boolean servedByAnyBut(String model, RegisteredWorker but) {
        for (RegisteredWorker w : workers) {
            if (w != but && w.serves(model)) {
                return true;
            }
        }
        return false;
    }
}
