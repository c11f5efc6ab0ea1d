package org.cocoonjvm.gateway.api;

import io.vertx.core.Handler;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.registry.WorkerRegistry;

/**
 * {@code GET /v1/models}: the {@link ModelCatalog} in OpenAI's list shape, with Cocoon's fields
 * (price in nanoTON per token, workers, attested workers) added to each model.
 */
public final class ModelsHandler implements Handler<RoutingContext> {
    private final ModelCatalog catalog;

    public ModelsHandler(WorkerRegistry registry, RequestBilling billing) {
        this.catalog = new ModelCatalog(registry, billing);
    }

    @Override
    public void handle(RoutingContext ctx) {
        JsonArray data = new JsonArray();
        for (ModelCatalog.Entry m : catalog.served()) {
            data.add(new JsonObject()
                    .put("id", m.id()).put("object", "model").put("created", 0).put("owned_by", "cocoon")
                    .put("hash", m.hash()).put("max_context", m.maxContext())
                    .put("price_nanoton_per_token", m.pricePerToken())
                    .put("workers", m.workers()).put("attested_workers", m.attestedWorkers()));
        }
        ctx.response().putHeader("Content-Type", "application/json")
                .end(new JsonObject().put("object", "list").put("data", data).encode());
    }
}
