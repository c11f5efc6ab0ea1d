package org.cocoonjvm.gateway.api;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.grpc.ModelRef;

/**
 * The models clients can ask for: every model a completion is not refused as unknown for (some
 * worker serves it, or one did minutes ago and requests are told to retry), with its price, what
 * a request is held at per token, how many healthy workers serve it now (not cordoned) and how many of those
 * proved their attestation. {@code GET /v1/models} and {@code Inference.Models} both list this.
 */
public final class ModelCatalog {
    /**
     * @param created          Unix time the gateway first saw it served
     * @param pricePerToken    nanoTON per token; -1 when this gateway has no price for it
     * @param reservedPerToken nanoTON per token a request holds until it is billed (the price at the
     *                         highest worker coefficient); null when this gateway has no price for it
     * @param workers          healthy workers serving it now, cordoned ones left out; 0 while it waits for one to come back
     */
    public record Entry(String id, String hash, int maxContext, long created, long pricePerToken, BigDecimal reservedPerToken,
                        int workers, int attestedWorkers) {
        Entry plus(RegisteredWorker worker) {
            int attested = worker.attestation().attested() ? 1 : 0;
            return new Entry(id, hash, maxContext, created, pricePerToken, reservedPerToken, workers + 1, attestedWorkers + attested);
        }
    }

    private final WorkerRegistry registry;
    private final RequestBilling billing;

    public ModelCatalog(WorkerRegistry registry, RequestBilling billing) {
        this.registry = registry;
        this.billing = billing;
    }

    /** Sorted by id. */
    public List<Entry> listed() {
        Map<String, Entry> models = new TreeMap<>();
        for (WorkerRegistry.KnownModel known : registry.knownModels()) {
            ModelRef m = known.model();
            PriceSchedule schedule = billing.schedule(m.getName());
            models.put(m.getName(), new Entry(m.getName(), m.getHash(), m.getMaxContext(), known.createdSeconds(),
                    schedule == null ? -1 : schedule.pricePerToken(), schedule == null ? null : Pricing.reservedPerToken(schedule), 0, 0));
        }
        for (RegisteredWorker worker : registry.all()) {
            if (registry.available(worker)) {
                for (ModelRef m : worker.models()) {
                    models.computeIfPresent(m.getName(), (name, entry) -> entry.plus(worker));
                }
            }
        }
        return List.copyOf(models.values());
    }
}
