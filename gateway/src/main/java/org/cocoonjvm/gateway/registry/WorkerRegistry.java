package org.cocoonjvm.gateway.registry;

import io.vertx.core.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;

/**
 * The workers this gateway may route to, and the routing rule. Written by registration sessions,
 * read by every request; a concurrent map and per-worker atomics keep both sides lock-free.
 */
public final class WorkerRegistry {
    private final ConcurrentHashMap<String, RegisteredWorker> workers = new ConcurrentHashMap<>();
    private final LongSupplier nanoClock;
    private final long heartbeatIntervalMs;
    /** A worker silent for this long is skipped until it speaks again. */
    private final long staleAfterNanos;

    public WorkerRegistry(long heartbeatIntervalMs, LongSupplier nanoClock) {
        this.heartbeatIntervalMs = heartbeatIntervalMs;
        this.nanoClock = nanoClock;
        this.staleAfterNanos = TimeUnit.MILLISECONDS.toNanos(3 * heartbeatIntervalMs);
    }

    public long heartbeatIntervalMs() {
        return heartbeatIntervalMs;
    }

    /**
     * Adds a worker, replacing any earlier session with the same id.
     *
     * @throws IllegalArgumentException naming what is wrong with the Hello
     */
    public RegisteredWorker register(Hello hello) {
        if (hello.getWorkerId().isBlank()) {
            throw new IllegalArgumentException("worker_id is empty");
        }
        if (hello.getModelsCount() == 0) {
            throw new IllegalArgumentException("the worker announced no models");
        }
        if (hello.getCapacity() == 0) {
            throw new IllegalArgumentException("the worker announced capacity 0");
        }
        RegisteredWorker worker = new RegisteredWorker(hello, parseEndpoint(hello.getEndpoint()), nanoClock.getAsLong());
        workers.put(worker.id(), worker);
        return worker;
    }

    /** Removes this registration only, not a newer one that replaced it. */
    public void remove(RegisteredWorker worker) {
        workers.remove(worker.id(), worker);
    }

    public void heartbeat(RegisteredWorker worker, org.cocoonjvm.protocol.grpc.WorkerLoad load) {
        worker.heartbeat(load, nanoClock.getAsLong());
    }

    public Collection<RegisteredWorker> all() {
        return workers.values();
    }

    public boolean healthy(RegisteredWorker worker) {
        return nanoClock.getAsLong() - worker.lastSeenNanos() <= staleAfterNanos;
    }

    /**
     * Picks the healthy worker serving {@code model} with the fewest requests in flight per unit of
     * capacity; ties go to a random one so that equal workers share load.
     *
     * @throws ApiException {@code MODEL_NOT_FOUND} when no worker serves the model at all,
     *                      {@code NO_CAPACITY} when those that do are unhealthy
     */
    public RegisteredWorker pick(String model) {
        List<RegisteredWorker> best = new ArrayList<>(2);
        double bestLoad = Double.MAX_VALUE;
        boolean known = false;
        for (RegisteredWorker w : workers.values()) {
            if (!w.serves(model)) {
                continue;
            }
            known = true;
            if (!healthy(w)) {
                continue;
            }
            double load = (double) w.inFlight() / w.capacity();
            if (load < bestLoad) {
                best.clear();
                bestLoad = load;
            }
            if (load == bestLoad) {
                best.add(w);
            }
        }
        if (!known) {
            throw new ApiException(ErrorKind.MODEL_NOT_FOUND, "model",
                    "The model '" + model + "' does not exist or no worker serves it; see GET /v1/models.");
        }
        if (best.isEmpty()) {
            throw new ApiException(ErrorKind.NO_CAPACITY, "No healthy worker serves '" + model + "' right now; retry shortly.");
        }
        return best.get(best.size() == 1 ? 0 : ThreadLocalRandom.current().nextInt(best.size()));
    }

    private static SocketAddress parseEndpoint(String endpoint) {
        URI uri;
        try {
            uri = URI.create(endpoint);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("endpoint is not a URI: " + endpoint);
        }
        if (!"http".equals(uri.getScheme()) || uri.getHost() == null || uri.getPort() <= 0) {
            throw new IllegalArgumentException("endpoint must look like http://host:port, got: " + endpoint);
        }
        return SocketAddress.inetSocketAddress(uri.getPort(), uri.getHost());
    }
}
