package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.cocoonjvm.gateway.metrics.GatewayMetrics;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@code GET /metrics} after real requests through a real gateway to real (synthetic) workers. */
class MetricsTest {
    private TestNetwork net;

    @BeforeEach
    void start() {
        net = new TestNetwork();
    }

    @AfterEach
    void stop() {
        net.close();
    }

    @Test
    void streamedRequest_showsTtftTokensStatusCostAndWorkerGauges() throws Exception {
        net.addWorker(200);
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":8"));
        List<SseEvents.Event> events = SseEvents.read(response).ended.get(10, TimeUnit.SECONDS);
        JsonObject usage = new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage");

        // A request is reported once its last write is done, which the client may see first.
        TestNetwork.eventually("the request is reported", () -> scrape().value("cocoon_request_attempts_total").orElse(0) == 1);
        Exposition m = scrape();
        assertThat(m.get("cocoon_time_to_first_token_seconds_count", "model", "synthetic")).isEqualTo(1);
        assertThat(m.get("cocoon_time_to_first_token_seconds_bucket", "model", "synthetic", "le", "+Inf")).isEqualTo(1);
        assertThat(m.get("cocoon_e2e_request_latency_seconds_count", "model", "synthetic")).isEqualTo(1);
        assertThat(m.get("cocoon_request_queue_time_seconds_count", "model", "synthetic")).isEqualTo(1);
        // The gateway's own share of time to first token: some, and less than the whole.
        assertThat(m.get("cocoon_gateway_overhead_seconds_count", "model", "synthetic")).isEqualTo(1);
        assertThat(m.get("cocoon_gateway_overhead_seconds_sum", "model", "synthetic")).isPositive()
                .isLessThan(m.get("cocoon_time_to_first_token_seconds_sum", "model", "synthetic"));
        // The first delta is not a gap; the worker may merge tokens into one delta, never split them.
        assertThat(m.get("cocoon_inter_token_latency_seconds_count", "model", "synthetic")).isBetween(1.0, 7.0);
        assertThat(m.get("cocoon_generation_tokens_total", "model", "synthetic")).isEqualTo(usage.getDouble("completion_tokens"));
        assertThat(m.get("cocoon_prompt_tokens_total", "model", "synthetic")).isEqualTo(usage.getDouble("prompt_tokens"));
        assertThat(m.get("cocoon_billed_nanoton_total", "model", "synthetic")).isEqualTo(usage.getDouble("total_cost"));
        assertThat(m.get("cocoon_requests_total", "model", "synthetic", "status", "200", "tier", "default")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "200")).isEqualTo(1);
        assertThat(m.get("cocoon_request_attempts_total")).isEqualTo(1);
        assertThat(m.get("cocoon_request_retries_total")).isZero();
        assertThat(m.find("cocoon_request_errors_total")).allSatisfy(sample -> assertThat(sample.value()).isZero());

        assertThat(m.get("cocoon_workers_registered")).isEqualTo(1);
        assertThat(m.get("cocoon_gateway_worker_in_flight", "worker", "worker-1")).isZero();
        assertThat(m.get("cocoon_gateway_worker_healthy", "worker", "worker-1")).isEqualTo(1);
        assertThat(m.get("cocoon_gateway_worker_routable", "worker", "worker-1")).isEqualTo(1);
        assertThat(m.get("cocoon_gateway_worker_capacity", "worker", "worker-1")).isPositive();
    }

    /** Audit V, V-5: a cordoned worker looked as routable as any in /metrics: healthy, its capacity counted. */
    @Test
    void aCordonedWorker_isHealthyButNotRoutable() {
        net.addWorker(1000);
        assertThat(net.call(HttpMethod.POST, "/admin/workers/worker-1/cordon", TestNetwork.ADMIN_KEY, null).status()).isEqualTo(200);

        Exposition m = scrape();
        assertThat(m.get("cocoon_gateway_worker_healthy", "worker", "worker-1")).isEqualTo(1);
        assertThat(m.get("cocoon_gateway_worker_routable", "worker", "worker-1")).isZero();
    }

    /** Audit L, 9: a request for name@hash made series of its own beside name's, so dashboards counted one model twice. */
    @Test
    void aRequestPinnedToAHash_countsUnderTheModelsName() throws Exception {
        net.addWorker(200);
        String pinned = "synthetic@" + net.call(HttpMethod.GET, "/v1/models/synthetic", API_KEY, null).json().getString("hash");
        for (String model : List.of(pinned, "synthetic")) {
            HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat(model, true, "\"max_tokens\":4"));
            SseEvents.read(response).ended.get(10, TimeUnit.SECONDS);
        }

        TestNetwork.eventually("both requests are reported", () -> scrape().value("cocoon_request_attempts_total").orElse(0) == 2);
        Exposition m = scrape();
        assertThat(m.get("cocoon_requests_total", "model", "synthetic", "status", "200", "tier", "default")).isEqualTo(2);
        assertThat(m.get("cocoon_time_to_first_token_seconds_count", "model", "synthetic")).isEqualTo(2);
        assertThat(m.get("cocoon_inter_token_latency_seconds_count", "model", "synthetic")).isPositive();
        assertThat(net.call(HttpMethod.GET, "/metrics", null, null).body()).doesNotContain("@");
    }

    @Test
    void metrics_needsNoKey_andIsPrometheusText() {
        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/metrics", null, null);
        assertThat(reply.status()).isEqualTo(200);
        assertThat(reply.response().getHeader("Content-Type")).isEqualTo("text/plain; version=0.0.4; charset=utf-8");
        assertThat(reply.body()).contains("# TYPE cocoon_workers_registered gauge");
        assertThat(Exposition.parse(reply.body()).get("cocoon_workers_registered")).isZero();
    }

    /** What an operator looks at after the gateway's own series: heap, GC, threads, CPU, file descriptors. */
    @Test
    void metrics_showTheProcess_andEveryErrorCodeFromZero() {
        String body = net.call(HttpMethod.GET, "/metrics", null, null).body();
        assertThat(body).contains("jvm_memory_used_bytes{area=\"heap\"", "jvm_threads_live_threads ", "process_cpu_usage ",
                "process_uptime_seconds ", "process_files_open_files ", "jvm_gc_memory_allocated_bytes_total ");
        assertThat(body).contains("cocoon_request_errors_total{code=\"no_capacity\"} 0.0",
                "cocoon_request_errors_total{code=\"client_stalled\"} 0.0", "cocoon_request_errors_total{code=\"timeout\"} 0.0");
    }

    @Test
    void refusals_401_404_503_areCounted() throws Exception {
        // One running slot, one waiting place: a third concurrent request finds no room (as in ErrorsTest).
        net.addWorker(20, 1, new SchedulerOptions(1, 512, 50));

        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", "sk-wrong", chat("synthetic", false, "")).status())
                .isEqualTo(401);
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("gpt-nope", false, "")).status())
                .isEqualTo(404);
        HttpClientResponse first = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents firstEvents = SseEvents.read(first);
        TestNetwork.eventually("the first request runs", () -> firstEvents.size() >= 1);
        var second = net.request(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, ""));
        TestNetwork.eventually("the second request waits on the worker",
                () -> net.workerStatus(net.workers.getFirst()).getJsonObject("load").getInteger("waiting") == 1);
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, "")).status())
                .isEqualTo(503);

        TestNetwork.eventually("the 503 is reported",
                () -> !scrape().find("cocoon_request_errors_total", "code", "no_capacity").isEmpty());
        Exposition m = scrape();
        // 401 is refused at the door, before any relay: counted by its code all the same.
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "401")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "404")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "503")).isEqualTo(1);
        assertThat(m.get("cocoon_request_errors_total", "code", "model_not_found")).isEqualTo(1);
        assertThat(m.get("cocoon_request_errors_total", "code", "no_capacity")).isEqualTo(1);
        assertThat(m.get("cocoon_request_errors_total", "code", "invalid_api_key")).isEqualTo(1);
        // A name no worker serves does not become a label value.
        assertThat(m.get("cocoon_requests_total", "model", GatewayMetrics.UNKNOWN_MODEL, "status", "404")).isEqualTo(1);
        assertThat(m.find("cocoon_requests_total", "model", "gpt-nope")).isEmpty();
        assertThat(m.get("cocoon_requests_total", "model", "synthetic", "status", "503", "tier", "default")).isEqualTo(1);
        assertThat(m.get("cocoon_gateway_worker_in_flight", "worker", "worker-1")).isEqualTo(2);

        first.request().connection().close();
        assertThat(TestNetwork.await(second).statusCode()).isEqualTo(200);
    }

    /**
     * Audit V, V-1 and V-7: a refusal before any relay (a rate limit, a wrong key, a path no route
     * takes) is counted by its code as a relayed failure is, and every response by its route: a
     * CORS preflight's, an admin refusal's, a probed path's.
     */
    @Test
    void everyRefusal_isCountedByItsCode_andEveryResponseByItsRoute() {
        net.close();
        net = new TestNetwork(new KeyLimits(1, 0, 0), RelayOptions.DEFAULTS, TestNetwork.START_BALANCE);
        net.addWorker(1000);
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "\"max_tokens\":1")).status())
                .isEqualTo(200);
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "")).status())
                .isEqualTo(429);
        assertThat(net.call(HttpMethod.GET, "/v1/models", "sk-wrong", null).status()).isEqualTo(401);
        assertThat(net.call(HttpMethod.HEAD, "/v1/models", API_KEY, null).status()).isEqualTo(200);  // rerouted as a GET
        assertThat(net.call(HttpMethod.GET, "/admin/workers", "admin-wrong", null).status()).isEqualTo(401);
        assertThat(net.call(HttpMethod.GET, "/wp-login.php", null, null).status()).isEqualTo(404);
        RequestOptions preflight = new RequestOptions().setMethod(HttpMethod.OPTIONS).setURI("/v1/chat/completions")
                .putHeader("Origin", "https://chat.example").putHeader("Access-Control-Request-Method", "POST");
        assertThat(TestNetwork.await(net.reply(preflight, null)).status()).isEqualTo(204);

        TestNetwork.eventually("the request is reported", () -> scrape().value("cocoon_request_attempts_total").orElse(0) == 1);
        Exposition m = scrape();
        assertThat(m.get("cocoon_request_errors_total", "code", "rate_limit_exceeded")).isEqualTo(1);
        assertThat(m.get("cocoon_request_errors_total", "code", "invalid_api_key")).isEqualTo(2);
        assertThat(m.get("cocoon_request_errors_total", "code", "not_found")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "200")).isEqualTo(2);
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "429")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "401")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "204")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "admin", "status", "401")).isEqualTo(1);
        assertThat(m.get("cocoon_http_responses_total", "route", "other", "status", "404")).isEqualTo(1);
        // The scrapes before this one.
        assertThat(m.get("cocoon_http_responses_total", "route", "probe", "status", "200")).isPositive();
        assertThat(m.find("cocoon_http_responses_total").stream().map(s -> s.labels().get("route")))
                .containsOnly("v1", "admin", "probe", "other");
    }

    /** Audit V, V-9: a series that first appears at 1 shows no increase(); those whose labels are known start at 0. */
    @Test
    void countersWithKnownLabels_startAtZero_andAModelsOnceItIsServed() {
        Exposition before = scrape();
        for (String status : List.of("200", "204", "400", "401", "402", "404", "405", "408", "413", "414", "415", "429",
                "431", "500", "502", "503", "504")) {
            assertThat(before.get("cocoon_http_responses_total", "route", "v1", "status", status)).as(status).isZero();
        }
        assertThat(before.get("cocoon_http_responses_total", "route", "admin", "status", "401")).isZero();
        assertThat(before.get("cocoon_grpc_refusals_total", "code", "insufficient_balance")).isZero();
        assertThat(before.get("cocoon_grpc_refusals_total", "code", "invalid_api_key")).isZero();
        assertThat(before.find("cocoon_requests_total")).isEmpty();

        net.addWorker(1000);

        Exposition served = scrape();
        for (String tier : List.of("default", "flex")) {
            for (String status : List.of("200", "499", "502", "503", "504")) {
                assertThat(served.get("cocoon_requests_total", "model", "synthetic", "status", status, "tier", tier)).isZero();
            }
        }
        assertThat(served.get("cocoon_generation_tokens_total", "model", "synthetic")).isZero();
        assertThat(served.get("cocoon_billed_nanoton_total", "model", "synthetic")).isZero();
        assertThat(served.get("cocoon_time_to_first_token_seconds_count", "model", "synthetic")).isZero();
        assertThat(served.get("cocoon_inter_token_latency_seconds_count", "model", "synthetic")).isZero();
    }

    /**
     * Audit V, V-11: the requests for a model whose last worker left are 503 (it was served lately),
     * and count under its name, not with clients' typos under "unknown".
     */
    @Test
    void aModelWhoseLastWorkerLeft_countsIts503sUnderItsName() {
        net.addWorker(1000);
        TestNetwork.await(net.workerVertx.getFirst().close());
        net.workerVertx.removeFirst();
        TestNetwork.eventually("the gateway dropped worker-1", () -> scrape().value("cocoon_workers_registered").orElse(1) == 0);

        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "")).status())
                .isEqualTo(503);

        TestNetwork.eventually("the 503 is reported",
                () -> scrape().value("cocoon_request_errors_total", "code", "no_capacity").orElse(0) == 1);
        Exposition m = scrape();
        assertThat(m.get("cocoon_requests_total", "model", "synthetic", "status", "503", "tier", "default")).isEqualTo(1);
        assertThat(m.find("cocoon_requests_total", "model", GatewayMetrics.UNKNOWN_MODEL)).isEmpty();
    }

    @Test
    void clientDisconnect_isCounted_andItsTokensStillAre_andHowLongTheWorkerTookToStop() {
        net.addWorker(20);  // a full synthetic reply takes over a second
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("two chunks arrived", () -> sse.size() >= 2);

        response.request().connection().close();

        TestNetwork.eventually("the disconnect is counted",
                () -> scrape().value("cocoon_client_disconnects_total").orElse(0) == 1);
        Exposition m = scrape();
        assertThat(m.get("cocoon_generation_tokens_total", "model", "synthetic")).isGreaterThanOrEqualTo(2);
        assertThat(m.get("cocoon_e2e_request_latency_seconds_count", "model", "synthetic")).isZero();
        assertThat(m.get("cocoon_gateway_worker_in_flight", "worker", "worker-1")).isZero();
        // At 20 tokens/s the worker sees the cancel at its next step, within 50 ms: a loaded machine may take longer.
        assertThat(m.get("cocoon_cancel_latency_seconds_count", "model", "synthetic")).isEqualTo(1);
        assertThat(m.get("cocoon_cancel_latency_seconds_sum", "model", "synthetic")).isPositive().isLessThan(1.0);
        // Its status went out with the first chunk.
        assertThat(m.get("cocoon_requests_total", "model", "synthetic", "status", "200", "tier", "default")).isEqualTo(1);
    }

    /** Nothing was served to a client that left before the response head: counted 499, never 200. */
    @Test
    void clientGoneBeforeTheResponseHead_isCounted499() {
        net.addWorker(20);  // a full synthetic reply takes over a second
        HttpClientRequest waiting = net.unanswered(TestNetwork.post("/v1/chat/completions", API_KEY), chat("synthetic", false, ""));
        TestNetwork.eventually("the worker runs it", () -> net.workerStatus(net.workers.getFirst()).getJsonObject("load").getInteger("running") == 1);

        waiting.connection().close();

        TestNetwork.eventually("the disconnect is counted",
                () -> scrape().value("cocoon_client_disconnects_total").orElse(0) == 1);
        Exposition m = scrape();
        assertThat(m.get("cocoon_requests_total", "model", "synthetic", "status", "499", "tier", "default")).isEqualTo(1);
        assertThat(m.get("cocoon_requests_total", "model", "synthetic", "status", "200", "tier", "default")).isZero();
        assertThat(m.get("cocoon_http_responses_total", "route", "v1", "status", "200")).isZero();
    }

    @Test
    void workerLeaving_takesItsGaugesAway() {
        net.addWorker(1000);
        net.addWorker(1000);
        Exposition both = scrape();
        assertThat(both.get("cocoon_workers_registered")).isEqualTo(2);
        assertThat(both.find("cocoon_gateway_worker_healthy")).hasSize(2);

        TestNetwork.await(net.workerVertx.getFirst().close());
        net.workerVertx.removeFirst();

        TestNetwork.eventually("the gateway dropped worker-1", () -> scrape().find("cocoon_gateway_worker_in_flight", "worker", "worker-1").isEmpty());
        Exposition after = scrape();
        assertThat(after.get("cocoon_workers_registered")).isEqualTo(1);
        assertThat(after.find("cocoon_gateway_worker_healthy", "worker", "worker-1")).isEmpty();
        assertThat(after.find("cocoon_gateway_worker_capacity", "worker", "worker-1")).isEmpty();
        assertThat(after.get("cocoon_gateway_worker_healthy", "worker", "worker-2")).isEqualTo(1);
    }

    private Exposition scrape() {
        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/metrics", null, null);
        assertThat(reply.status()).isEqualTo(200);
        return Exposition.parse(reply.body());
    }
}
