package org.cocoonjvm.worker.serve;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.metrics.ProcessMetrics;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.worker.payments.Earnings;
import org.cocoonjvm.worker.payments.TokenCounts;
import org.cocoonjvm.worker.payments.Unbilled;

/**
 * The worker's Prometheus metrics ({@code GET /metrics}), for a GPU owner's dashboards and alerts
 * (audit L-9 / M-8). Everything is read when scraped, from what {@code /status} reads: the engine
 * loop does no work for metrics, and the two never disagree. Names follow vLLM's
 * ({@code cocoon_worker_requests_running} where vLLM has {@code vllm:num_requests_running}).
 *
 * <p>Each scrape takes one snapshot of the load, the gateway link and the channels, so that
 * running and waiting, or a channel's sent and unpaid, come from the same moment.
 *
 * <p>The lifetime figures ({@code cocoon_worker_lifetime_*}, {@link Earnings}) are gauges, not
 * counters starting from their saved values: the tokens saved last may be a few seconds behind
 * what a crashed run had exported, and a counter that goes down reads to Prometheus as a reset, so
 * {@code increase()} would count the whole lifetime again. Rates come from the counters of this
 * process ({@code cocoon_worker_generation_tokens_total}, {@code cocoon_worker_prompt_tokens_total}),
 * which start at 0 with each process as counters do.
 */
final class WorkerMetrics implements AutoCloseable {
    private final PrometheusMeterRegistry meters = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final ProcessMetrics process;
    private final Supplier<WorkerLoad> load;
    private final Supplier<JsonObject> gateway;
    private final Supplier<JsonArray> channels;
    private final Function<WorkerLoad, Earnings> earnings;
    private final MultiGauge sent;
    private final MultiGauge unpaid;
    private final MultiGauge closeShortfall;
    private volatile WorkerLoad loadNow = WorkerLoad.getDefaultInstance();
    private volatile Earnings earningsNow = new Earnings(TokenCounts.NONE, List.of());
    /** The link's state label ({@link Registration.State#label()}); null without a gateway. */
    private volatile String linkNow;

    /**
     * @param load     the scheduler's load, as {@code /status} shows it under {@code load}
     * @param gateway  the link's state, as {@code /status} shows it under {@code gateway}; null without one
     * @param channels the payment channels, as {@code /status} shows them under {@code channels}
     * @param earnings the lifetime earnings with a run's load, whose totals {@code /status} shows
     *                 under {@code earnings}
     * @param unbilled what this run wrote off, as {@code /status} shows it under {@code unbilled}
     */
    WorkerMetrics(Supplier<WorkerLoad> load, Supplier<JsonObject> gateway, Supplier<JsonArray> channels,
                  Function<WorkerLoad, Earnings> earnings, Unbilled unbilled) {
        this.load = load;
        this.gateway = gateway;
        this.channels = channels;
        this.earnings = earnings;
        Gauge.builder("cocoon.worker.requests.running", this, m -> m.loadNow.getRunning())
                .description("Sequences in the engine's batch now").register(meters);
        Gauge.builder("cocoon.worker.requests.waiting", this, m -> m.loadNow.getWaiting())
                .description("Sequences queued for a batch slot or KV cache").register(meters);
        Gauge.builder("cocoon.worker.capacity", this, m -> m.loadNow.getCapacity())
                .description("Sequences the engine runs at once").register(meters);
        FunctionCounter.builder("cocoon.worker.generation.tokens", this, m -> m.loadNow.getTokensGenerated())
                .description("Tokens generated since start, over all requests (gateway's and this API's)").register(meters);
        FunctionCounter.builder("cocoon.worker.prompt.tokens", this, m -> m.loadNow.getPromptTokens())
                .description("Prompt tokens fed to the model since start, over all requests").register(meters);
        FunctionCounter.builder("cocoon.worker.unbilled.tokens", unbilled, Unbilled::completionTokens)
                .tag("reason", "gateway_reset")
                .description("Tokens generated for a gateway that reset their stream before they went out: it never got "
                        + "them and never pays them (written off its channel's unpaid amount)").register(meters);
        FunctionCounter.builder("cocoon.worker.unbilled.nanoton", unbilled, Unbilled::nanoton)
                .tag("reason", "gateway_reset")
                .description("nanoTON of fees written off with those tokens").register(meters);
        Gauge.builder("cocoon.worker.lifetime.generation.tokens", this, m -> m.earningsNow.tokens().completion())
                .description("Tokens generated over all runs (saved every few seconds: a crash loses the last ones)")
                .register(meters);
        Gauge.builder("cocoon.worker.lifetime.prompt.tokens", this, m -> m.earningsNow.tokens().prompt())
                .description("Prompt tokens fed to the model over all runs (saved as the generated ones)").register(meters);
        Gauge.builder("cocoon.worker.lifetime.earned.nanoton", this, m -> m.earningsNow.earnedNanoton())
                .description("nanoTON the gateways' signed states pay this worker, over every channel it was ever paid on")
                .register(meters);
        Gauge.builder("cocoon.worker.lifetime.paid.out.nanoton", this, m -> m.earningsNow.paidOutNanoton())
                .description("nanoTON the channels closed on chain paid out, before the chain's forwarding fee")
                .register(meters);
        for (Registration.State state : Registration.State.values()) {
            String label = state.label();
            Gauge.builder("cocoon.worker.gateway.registration", this, m -> label.equals(m.linkNow) ? 1 : 0)
                    .tag("state", label)
                    .description("1 for the worker's state with its gateway now, else 0 (all 0 without a gateway)")
                    .register(meters);
        }
        this.sent = MultiGauge.builder("cocoon.worker.channel.sent.nanoton")
                .description("nanoTON the channel's last signed state pays this worker").register(meters);
        this.unpaid = MultiGauge.builder("cocoon.worker.channel.unpaid.nanoton")
                .description("nanoTON earned on the channel that no signed state pays yet").register(meters);
        // The alert a GPU owner needs against a close started with the gateway's key: > 0 is money
        // the close will not pay unless answered (audit Z, Z-6).
        this.closeShortfall = MultiGauge.builder("cocoon.worker.channel.close.shortfall.nanoton")
                .description("While an uncooperative close runs on the channel: nanoTON its last signed state pays this "
                        + "worker beyond what the close pays now (0 once answered)").register(meters);
        this.process = ProcessMetrics.bindTo(meters);
    }

    /** {@code GET /metrics}. */
    void serve(RoutingContext ctx) {
        OpenAiResponses.send(ctx.response(), ProcessMetrics.CONTENT_TYPE, scrape());
    }

    String scrape() {
        loadNow = load.get();
        earningsNow = earnings.apply(loadNow);
        JsonObject link = gateway.get();
        linkNow = link == null ? null : link.getString("state");
        refreshChannels();
        return meters.scrape();
    }

    /**
     * One row per channel not closed on chain: a worker has a few, and a closed one pays nothing
     * more ({@code /status} still lists it), so its series end instead of piling up.
     */
    private void refreshChannels() {
        List<MultiGauge.Row<?>> sentRows = new ArrayList<>();
        List<MultiGauge.Row<?>> unpaidRows = new ArrayList<>();
        List<MultiGauge.Row<?>> shortfallRows = new ArrayList<>();
        for (Object entry : channels.get()) {
            JsonObject channel = (JsonObject) entry;
            if (channel.getBoolean("closed_on_chain", false)) {
                continue;
            }
            Tags tags = Tags.of("channel", channel.getString("channel_id"));
            sentRows.add(MultiGauge.Row.of(tags, channel.getLong("sent_nanoton")));
            unpaidRows.add(MultiGauge.Row.of(tags, channel.getLong("unpaid_nanoton")));
            JsonObject close = channel.getJsonObject("close");
            if (close != null) {
                shortfallRows.add(MultiGauge.Row.of(tags.and("started_by", close.getString("started_by")),
                        Math.max(0, channel.getLong("sent_nanoton") - close.getLong("pays_nanoton"))));
            }
        }
        sent.register(sentRows, true);
        unpaid.register(unpaidRows, true);
        closeShortfall.register(shortfallRows, true);
    }

    /** Stops listening for the JVM's GC notifications, which would otherwise keep the registry alive. */
    @Override
    public void close() {
        process.close();
    }
}
