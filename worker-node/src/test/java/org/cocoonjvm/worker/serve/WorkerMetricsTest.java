package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.atomic.AtomicReference;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.junit.jupiter.api.Test;

/** The registration and channel series, from the same JSON /status shows, as it changes between scrapes. */
class WorkerMetricsTest {
    private final AtomicReference<JsonObject> link = new AtomicReference<>(new JsonObject().put("state", "connecting"));
    private final AtomicReference<JsonArray> channels = new AtomicReference<>(new JsonArray());

    @Test
    void scrape_readsTheLinkStateAndEachOpenChannelAtTheScrape() {
        try (WorkerMetrics metrics = new WorkerMetrics(WorkerLoad::getDefaultInstance, link::get, channels::get)) {
            String before = metrics.scrape();
            assertThat(before).contains("cocoon_worker_gateway_registration{state=\"connecting\"} 1.0",
                    "cocoon_worker_gateway_registration{state=\"registered\"} 0.0",
                    "cocoon_worker_gateway_registration{state=\"refused\"} 0.0");
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
}
