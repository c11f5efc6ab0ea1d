package org.cocoonjvm.gateway.api;

import io.vertx.core.Handler;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.registry.ModelKeys;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;

/**
 * {@code GET /v1/models} and {@code GET /v1/models/{id}}: the {@link ModelCatalog} in OpenAI's shapes, with Cocoon's fields
 * (price and reservation in nanoTON per token, workers, attested workers) added to each model.
 */
public final class ModelsHandler implements Handler<RoutingContext> {
    public static final String PREFIX = "/v1/models/";
    private final ModelCatalog catalog;

    public ModelsHandler(WorkerRegistry registry, RequestBilling billing) {
        this.catalog = new ModelCatalog(registry, billing);
    }

    @Override
    public void handle(RoutingContext ctx) {
        JsonArray data = new JsonArray();
        for (ModelCatalog.Entry m : catalog.listed()) {
            data.add(json(m));
        }
        OpenAiResponses.json(ctx.response(), new JsonObject().put("object", "list").put("data", data).encode());
    }

    /**
     * {@code GET /v1/models/{id}}: one model, as SDKs' {@code models.retrieve} asks; its id may hold
     * slashes (Hugging Face names), so it is the rest of the path, and may be {@code name@hash}. 404
     * when the catalog lacks it, as a completion for it would be.
     */
    public void retrieve(RoutingContext ctx) {
        String id = URLDecoder.decode(ctx.normalizedPath().substring(PREFIX.length()), StandardCharsets.UTF_8);
        for (ModelCatalog.Entry m : catalog.listed()) {
            // name@hash pins the weights, as a completion's model may (audit H, H-6): answered under that id.
            if (ModelKeys.matches(m.id(), m.hash(), id)) {
                OpenAiResponses.json(ctx.response(), json(m).put("id", id).encode());
                return;
            }
        }
        RequestNotes.refuse(ctx, new ApiException(ErrorKind.MODEL_NOT_FOUND, "model",
                "The model '" + id + "' does not exist or no worker serves it; see GET /v1/models."));
    }

    private static JsonObject json(ModelCatalog.Entry m) {
        return new JsonObject()
                .put("id", m.id()).put("object", "model").put("created", m.created()).put("owned_by", "cocoon")
                .put("hash", m.hash()).put("max_context", m.maxContext())
                .put("price_nanoton_per_token", m.pricePerToken())
                .put("reserved_nanoton_per_token", m.reservedPerToken())
                .put("workers", m.workers()).put("attested_workers", m.attestedWorkers());
    }
}
