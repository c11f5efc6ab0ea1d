package org.cocoonjvm.gateway.api;

import io.vertx.core.Handler;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.grpc.ModelRef;

/**
 * {@code GET /v1/models}: every model some healthy worker serves, with its price in nanoTON per
 * token, how many workers serve it, and how many of those proved their attestation.
 */
public final class ModelsHandler implements Handler<RoutingContext> {
    private final WorkerRegistry registry;
    private final RequestBilling billing;

    public ModelsHandler(WorkerRegistry registry, RequestBilling billing) {
        this.registry = registry;
        this.billing = billing;
    }

    @Override
    public void handle(RoutingContext ctx) {
        Map<String, JsonObject> models = new TreeMap<>();
        for (RegisteredWorker worker : registry.all()) {
            if (!registry.healthy(worker)) {
                continue;
            }
            for (ModelRef m : worker.models()) {
                JsonObject entry = models.computeIfAbsent(m.getName(), name -> new JsonObject()
                        .put("id", name).put("object", "model").put("created", 0).put("owned_by", "cocoon")
                        .put("hash", m.getHash()).put("max_context", m.getMaxContext())
                        .put("price_nanoton_per_token", billing.pricePerToken(name))
                        .put("workers", 0).put("attested_workers", 0));
                entry.put("workers", entry.getInteger("workers") + 1);
                if (worker.attestation().equals("verified")) {
                    entry.put("attested_workers", entry.getInteger("attested_workers") + 1);
                }
            }
        }
        ctx.response().putHeader("Content-Type", "application/json")
                .end(new JsonObject().put("object", "list").put("data", new JsonArray(List.copyOf(models.values()))).encode());
    }
}
