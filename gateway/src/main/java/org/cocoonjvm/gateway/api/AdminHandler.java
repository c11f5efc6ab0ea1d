package org.cocoonjvm.gateway.api;

import io.vertx.core.Handler;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;

/** {@code GET /admin/workers}: each registered worker with its state, for operators. */
public final class AdminHandler implements Handler<RoutingContext> {
    private final WorkerRegistry registry;

    public AdminHandler(WorkerRegistry registry) {
        this.registry = registry;
    }

    @Override
    public void handle(RoutingContext ctx) {
        JsonArray workers = new JsonArray();
        long now = registry.nanoTime();
        for (RegisteredWorker w : registry.all()) {
            JsonArray models = new JsonArray();
            w.models().forEach(m -> models.add(m.getName() + "@" + m.getHash()));
            workers.add(new JsonObject()
                    .put("id", w.id())
                    .put("endpoint", w.endpoint())
                    .put("engine", w.engine())
                    .put("models", models)
                    .put("attestation", w.attestation())
                    .put("healthy", registry.healthy(w))
                    .put("capacity", w.capacity())
                    .put("in_flight", w.inFlight())
                    .put("running", w.load().getRunning())
                    .put("waiting", w.load().getWaiting())
                    .put("tokens_served", w.tokensServed())
                    .put("failures", w.failures())
                    .put("circuit_open", w.breakerOpen(now))
                    .put("tokens_per_s", w.speed()));
        }
        ctx.response().putHeader("Content-Type", "application/json").end(new JsonObject().put("workers", workers).encode());
    }
}
