package org.cocoonjvm.gateway.metrics;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;

/**
 * Per-worker gauges, read from the {@link WorkerRegistry} when scraped. Workers come and go, so
 * the rows are rebuilt from {@link WorkerRegistry#all()} on every {@link #refresh()}: a worker
 * that left loses its series at the next scrape, and one that re-registered under the same id is
 * read from its new registration. Nothing is kept per worker between scrapes.
 */
final class WorkerGauges {
    private final WorkerRegistry workers;
    private final MultiGauge inFlight;
    private final MultiGauge capacity;
    private final MultiGauge healthy;
    private final MultiGauge routable;

    WorkerGauges(MeterRegistry meters, WorkerRegistry workers) {
        this.workers = workers;
        this.inFlight = MultiGauge.builder("cocoon.gateway.worker.in.flight")
                .description("Requests the gateway has routed to the worker and not yet finished").register(meters);
        this.capacity = MultiGauge.builder("cocoon.gateway.worker.capacity")
                .description("Sequences the worker announced it can run at once").register(meters);
        this.healthy = MultiGauge.builder("cocoon.gateway.worker.healthy")
                .description("1 while the worker's heartbeats are current, else 0").register(meters);
        // Capacity that routing uses is sum(cocoon_gateway_worker_capacity * cocoon_gateway_worker_routable): a
        // cordoned worker, or one whose circuit is open, is healthy all the same (audit V, V-5).
        this.routable = MultiGauge.builder("cocoon.gateway.worker.routable")
                .description("1 while the gateway routes new requests to the worker; 0 while it is silent, cordoned, "
                        + "at its channel's cap, closing its channel or its circuit is open (/admin/workers says which)")
                .register(meters);
        Gauge.builder("cocoon.workers.registered", workers, w -> w.all().size()).strongReference(true)
                .description("Workers with an open registration session").register(meters);
        Gauge.builder("cocoon.workers.attested", workers, w -> w.all().stream().filter(x -> x.attestation().attested()).count())
                .strongReference(true)
                .description("Registered workers whose RA-TLS attestation the gateway verified").register(meters);
    }

    /** Rebuilds the rows from the workers registered now; call right before a scrape. */
    void refresh() {
        List<RegisteredWorker> now = new ArrayList<>(workers.all());
        inFlight.register(rows(now, RegisteredWorker::inFlight), true);
        capacity.register(rows(now, RegisteredWorker::capacity), true);
        healthy.register(rows(now, w -> workers.healthy(w) ? 1 : 0), true);
        long nowNanos = workers.nanoTime();
        routable.register(rows(now, w -> workers.standing(w, nowNanos) == WorkerRegistry.Standing.ROUTABLE ? 1 : 0), true);
    }

    private static List<MultiGauge.Row<?>> rows(List<RegisteredWorker> now, ToDoubleFunction<RegisteredWorker> value) {
        List<MultiGauge.Row<?>> rows = new ArrayList<>(now.size());
        for (RegisteredWorker w : now) {
            rows.add(MultiGauge.Row.of(Tags.of("worker", w.id()), w, value));
        }
        return rows;
    }
}
