package org.cocoonjvm.gateway.api;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.grpc.ModelRef;

/**
 * The models clients can ask for: every model some healthy worker serves, with its price, how
 * many workers serve it and how many of those proved their attestation. {@code GET /v1/models}
 * and {@code Inference.Models} both list this.
 */
public final class ModelCatalog {
    /**
     * @param pricePerToken nanoTON per token; -1 when this gateway has no price for it
     */
    public record Entry(String id, String hash, int maxContext, long pricePerToken, int workers, int attestedWorkers) {
        Entry plus(RegisteredWorker worker) {
            int attested = worker.attestation().attested() ? 1 : 0;
            return new Entry(id, hash, maxContext, pricePerToken, workers + 1, attestedWorkers + attested);
        }
    }

    private final WorkerRegistry registry;
    private final RequestBilling billing;

    public ModelCatalog(WorkerRegistry registry, RequestBilling billing) {
        this.registry = registry;
        this.billing = billing;
    }

    /** Sorted by id. */
    public List<Entry> served() {
        Map<String, Entry> models = new TreeMap<>();
        for (RegisteredWorker worker : registry.all()) {
            if (!registry.healthy(worker)) {
                continue;
            }
            for (ModelRef m : worker.models()) {
                Entry entry = models.get(m.getName());
                if (entry == null) {
                    entry = new Entry(m.getName(), m.getHash(), m.getMaxContext(), billing.pricePerToken(m.getName()), 0, 0);
                }
                models.put(m.getName(), entry.plus(worker));
            }
        }
        return List.copyOf(models.values());
    }
}
