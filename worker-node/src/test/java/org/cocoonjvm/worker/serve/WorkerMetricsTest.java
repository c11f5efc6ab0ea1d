package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.payments.Earnings;
import org.cocoonjvm.worker.payments.TokenCounts;
import org.cocoonjvm.worker.payments.Unbilled;
import org.junit.jupiter.api.Test;

/** The registration and channel series, from the same JSON /status shows, as it changes between scrapes. */
class WorkerMetricsTest {
    private final AtomicReference<JsonObject> link = new AtomicReference<>(new JsonObject().put("state", "connecting"));
    private final AtomicReference<JsonArray> channels = new AtomicReference<>(new JsonArray());

    @Test
    void scrape_readsTheLinkStateAndEachOpenChannelAtTheScrape() {
        try (WorkerMetrics metrics = new WorkerMetrics(WorkerLoad::getDefaultInstance, link::get, channels::get,
                load -> new Earnings(TokenCounts.NONE, List.of()), new Unbilled())) {
            String before = metrics.scrape();
            assertThat(before).contains("cocoon_worker_gateway_registration{state=\"connecting\"} 1.0",
                    "cocoon_worker_gateway_registration{state=\"registered\"} 0.0",
                    "cocoon_worker_gateway_registration{state=\"refused\"} 0.0",
                    "cocoon_worker_unbilled_tokens_total{reason=\"gateway_reset\"} 0.0",
                    "cocoon_worker_unbilled_nanoton_total{reason=\"gateway_reset\"} 0.0");
            assertThat(before).doesNotContain("cocoon_worker_channel_");

            link.set(new JsonObject().put("state", "registered"));
            channels.set(new JsonArray()
                    .add(new JsonObject().put("channel_id", "5e0e").put("sent_nanoton", 1200L).put("unpaid_nanoton", 300L)
                            .put("closed_on_chain", false))
                    .add(new JsonObject().put("channel_id", "c105").put("sent_nanoton", 9L).put("unpaid_nanoton", 0L)
                            .put("closed_on_chain", true)));
            String after = metrics.scrape();

            assertThat(after).contains("cocoon_worker_gateway_registration{state=\"registered\"} 1.0",
                    "cocoon_worker_gateway_registration{state=\"connecting\"} 0.0",
                    "cocoon_worker_channel_sent_nanoton{channel=\"5e0e\"} 1200.0",
                    "cocoon_worker_channel_unpaid_nanoton{channel=\"5e0e\"} 300.0");
            assertThat(after).doesNotContain("c105");  // closed on chain: it pays nothing more

            channels.set(new JsonArray());
            assertThat(metrics.scrape()).doesNotContain("5e0e");
        }
    }

    @Test
    void scrape_exportsTheLifetimeTotalsAsGauges_withThisRunsLoadOnTopOfTheSavedTokens() {
        WorkerLoad thisRun = WorkerLoad.newBuilder().setTokensGenerated(7).setPromptTokens(3).build();
        Instant opened = Instant.parse("2026-11-01T00:00:00Z");
        List<Earnings.Channel> history = List.of(
                new Earnings.Channel("c105", "ab", "0:01", "closed", opened, opened.plusSeconds(60), 900, 900, "aGFzaA==",
                        "0:03", 500L),
                new Earnings.Channel("5e0e", "ab", "0:02", "open", opened.plusSeconds(61), null, 50, 0, "", "0:03", null));
        try (WorkerMetrics metrics = new WorkerMetrics(() -> thisRun, () -> null, JsonArray::new,
                load -> new Earnings(new TokenCounts(1000 + load.getTokensGenerated(), 400 + load.getPromptTokens()),
                        history), new Unbilled())) {
            String scrape = metrics.scrape();

            assertThat(scrape).contains("# TYPE cocoon_worker_lifetime_generation_tokens gauge",
                    "cocoon_worker_lifetime_generation_tokens 1007.0", "cocoon_worker_lifetime_prompt_tokens 403.0",
                    "cocoon_worker_lifetime_earned_nanoton 950.0", "cocoon_worker_lifetime_paid_out_nanoton 900.0",
                    "cocoon_worker_generation_tokens_total 7.0", "# TYPE cocoon_worker_prompt_tokens_total counter",
                    "cocoon_worker_prompt_tokens_total 3.0");
        }
    }
}
