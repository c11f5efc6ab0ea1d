package org.cocoonjvm.gateway.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import com.google.protobuf.ByteString;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRefusedException;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.gateway.relay.RelayObserver;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.gateway.relay.RequestOutcome;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.openai.ServiceTier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** GatewayMetrics without a network: outcomes in, exposition text out. */
class GatewayMetricsTest {
    private final AtomicLong clock = new AtomicLong();
    private final WorkerRegistry workers = new WorkerRegistry(1_000, RelayOptions.DEFAULT_FLEX_RESERVE_PERCENT, clock::get,
            java.time.Clock.systemUTC());
    private final GatewayMetrics metrics = GatewayMetrics.prometheus(workers);

    @AfterEach
    void close() {
        metrics.close();
    }

    @Test
    void tokenGap_ofThreeTokens_isThreeSamplesOfAThird() {
        metrics.tokenGaps("m").gap(TimeUnit.MILLISECONDS.toNanos(30), 3);
        metrics.tokenGaps("m").gap(TimeUnit.MILLISECONDS.toNanos(40), 1);

        Exposition e = Exposition.parse(metrics.scrape());
        assertThat(e.get("cocoon_inter_token_latency_seconds_count", "model", "m")).isEqualTo(4);
        assertThat(e.get("cocoon_inter_token_latency_seconds_sum", "model", "m")).isCloseTo(0.070, within(1e-9));
        assertThat(e.get("cocoon_inter_token_latency_seconds_bucket", "model", "m", "le", "0.01")).isEqualTo(3);
        assertThat(e.get("cocoon_inter_token_latency_seconds_bucket", "model", "m", "le", "0.05")).isEqualTo(4);
    }

    @Test
    void tokenGaps_recordedOnTwoThreads_sumIntoOneSeries() throws InterruptedException {
        RelayObserver.TokenGaps here = metrics.tokenGaps("m");
        Thread other = Thread.ofPlatform().start(() -> metrics.tokenGaps("m").gap(TimeUnit.MILLISECONDS.toNanos(3), 1));
        here.gap(TimeUnit.MILLISECONDS.toNanos(2), 2);
        other.join();

        String text = metrics.scrape();
        Exposition e = Exposition.parse(text);
        assertThat(text).contains("# TYPE cocoon_inter_token_latency_seconds histogram");
        assertThat(e.get("cocoon_inter_token_latency_seconds_count", "model", "m")).isEqualTo(3);
        assertThat(e.get("cocoon_inter_token_latency_seconds_sum", "model", "m")).isCloseTo(0.005, within(1e-9));
        assertThat(e.get("cocoon_inter_token_latency_seconds_bucket", "model", "m", "le", "0.001")).isEqualTo(2);
        assertThat(e.get("cocoon_inter_token_latency_seconds_bucket", "model", "m", "le", "0.005")).isEqualTo(3);
        assertThat(e.get("cocoon_inter_token_latency_seconds_bucket", "model", "m", "le", "+Inf")).isEqualTo(3);
    }

    @Test
    void aModelSeenFinishing_hasItsInterTokenSeriesAtZero() {
        register("w1", "m");
        metrics.finished(new Outcome().tokens(3, 1, 0).timings(1_000_000, 2_000_000).build());

        assertThat(Exposition.parse(metrics.scrape()).get("cocoon_inter_token_latency_seconds_count", "model", "m")).isZero();
    }

    @Test
    void tokenGaps_throughAllObservers_reachEachThatRecords() {
        GatewayMetrics other = GatewayMetrics.prometheus(workers);
        other.close();  // the JVM's metrics are not what this test reads
        RelayObserver.TokenGaps gaps = RelayObserver.all(
                RelayObserver.NONE, metrics, other).tokenGaps("m");

        gaps.gap(TimeUnit.MILLISECONDS.toNanos(20), 2);

        assertThat(Exposition.parse(metrics.scrape()).get("cocoon_inter_token_latency_seconds_count", "model", "m")).isEqualTo(2);
        assertThat(Exposition.parse(other.scrape()).get("cocoon_inter_token_latency_seconds_count", "model", "m")).isEqualTo(2);
        assertThat(RelayObserver.all(RelayObserver.NONE).tokenGaps("m"))
                .isSameAs(RelayObserver.TokenGaps.NONE);
    }

    /**
     * Audit V, V-3: tokens counted as they are relayed (on two event loops) and cost as checkpoints
     * record it; the request's end counts only the rest, so each counter ends at the outcome's total.
     */
    @Test
    void tokensAndCostCountedWhileARequestRuns_areNotCountedAgainAtItsEnd() throws InterruptedException {
        register("w1", "m");
        RelayObserver.GeneratedTokens here = RelayObserver.all(RelayObserver.NONE, metrics).generatedTokens("m");
        here.generated(3);
        Thread other = Thread.ofPlatform().start(() -> metrics.generatedTokens("m").generated(2));
        other.join();
        metrics.billedProgress("m", 20);

        Exposition running = Exposition.parse(metrics.scrape());
        assertThat(running.get("cocoon_generation_tokens_total", "model", "m")).isEqualTo(5);
        assertThat(running.get("cocoon_billed_nanoton_total", "model", "m")).isEqualTo(20);

        metrics.finished(new Outcome().tokens(10, 7, 34).live(5, 20).build());
        Exposition ended = Exposition.parse(metrics.scrape());
        assertThat(ended.get("cocoon_generation_tokens_total", "model", "m")).isEqualTo(7);
        assertThat(ended.get("cocoon_billed_nanoton_total", "model", "m")).isEqualTo(34);
        assertThat(ended.get("cocoon_prompt_tokens_total", "model", "m")).isEqualTo(10);
        assertThat(RelayObserver.all(RelayObserver.NONE).generatedTokens("m")).isSameAs(RelayObserver.GeneratedTokens.NONE);
    }

    @Test
    void finished_countsTokensCostAttemptsAndTimings() {
        register("w1", "m");
        metrics.finished(new Outcome().attempts(3).tokens(10, 7, 34).timings(2_000_000, 50_000_000).build());

        Exposition e = Exposition.parse(metrics.scrape());
        assertThat(e.get("cocoon_requests_total", "model", "m", "status", "200", "tier", "default")).isEqualTo(1);
        assertThat(e.get("cocoon_prompt_tokens_total", "model", "m")).isEqualTo(10);
        assertThat(e.get("cocoon_generation_tokens_total", "model", "m")).isEqualTo(7);
        // Audit V, V-13: generated and billed, which is more than the client got when it left early.
        assertThat(metrics.scrape()).contains("# HELP cocoon_generation_tokens_total Completion tokens generated for requests"
                + " and billed to them, including those a client that left never received");
        assertThat(e.get("cocoon_billed_nanoton_total", "model", "m")).isEqualTo(34);
        assertThat(e.get("cocoon_request_attempts_total")).isEqualTo(3);
        assertThat(e.get("cocoon_request_retries_total")).isEqualTo(2);
        assertThat(e.get("cocoon_request_queue_time_seconds_sum", "model", "m")).isCloseTo(0.002, within(1e-9));
        assertThat(e.get("cocoon_time_to_first_token_seconds_count", "model", "m")).isEqualTo(1);
        assertThat(e.get("cocoon_e2e_request_latency_seconds_count", "model", "m")).isEqualTo(1);
        assertThat(e.get("cocoon_gateway_overhead_seconds_count", "model", "m")).isEqualTo(1);
        assertThat(e.get("cocoon_gateway_overhead_seconds_bucket", "model", "m", "le", "2.5E-5")).isZero();
        assertThat(e.get("cocoon_gateway_overhead_seconds_bucket", "model", "m", "le", "5.0E-5")).isEqualTo(1);
        assertThat(e.find("cocoon_request_errors_total")).allSatisfy(sample -> assertThat(sample.value()).isZero());
    }

    @Test
    void failureBeforeAnyToken_countsTheError_andSkipsTimingsItNeverHad() {
        register("w1", "m");
        metrics.finished(new Outcome().failed(503, "no_capacity").tokens(0, 0, 0).timings(-1, -1).build());

        Exposition e = Exposition.parse(metrics.scrape());
        assertThat(e.get("cocoon_request_errors_total", "code", "no_capacity")).isEqualTo(1);
        assertThat(e.get("cocoon_requests_total", "model", "m", "status", "503", "tier", "default")).isEqualTo(1);
        assertThat(e.get("cocoon_time_to_first_token_seconds_count", "model", "m")).isZero();
        assertThat(e.get("cocoon_gateway_overhead_seconds_count", "model", "m")).isZero();
        assertThat(e.get("cocoon_request_queue_time_seconds_count", "model", "m")).isZero();
        assertThat(e.get("cocoon_e2e_request_latency_seconds_count", "model", "m")).isZero();
        assertThat(e.get("cocoon_request_retries_total")).isZero();
    }

    @Test
    void modelNoWorkerServes_isLabelledUnknown_soClientsCannotMintSeries() {
        register("w1", "m");
        for (int i = 0; i < 3; i++) {
            metrics.finished(new Outcome().model("made-up-" + i).worker(null).attempts(0).failed(404, "model_not_found")
                    .tokens(0, 0, 0).timings(-1, -1).build());
        }

        Exposition e = Exposition.parse(metrics.scrape());
        assertThat(e.get("cocoon_requests_total", "model", GatewayMetrics.UNKNOWN_MODEL, "status", "404")).isEqualTo(3);
        assertThat(e.find("cocoon_requests_total").stream().map(s -> s.labels().get("model"))).containsOnly("unknown", "m");
        assertThat(e.get("cocoon_request_errors_total", "code", "model_not_found")).isEqualTo(3);
        assertThat(e.find("cocoon_time_to_first_token_seconds_count", "model", GatewayMetrics.UNKNOWN_MODEL)).isEmpty();
        assertThat(e.find("cocoon_prompt_tokens_total", "model", GatewayMetrics.UNKNOWN_MODEL)).isEmpty();
    }

    @Test
    void clientGone_isCountedOnce() {
        register("w1", "m");
        metrics.finished(new Outcome().tokens(10, 4, 28).clientGone().build());

        Exposition e = Exposition.parse(metrics.scrape());
        assertThat(e.get("cocoon_client_disconnects_total")).isEqualTo(1);
        assertThat(e.get("cocoon_generation_tokens_total", "model", "m")).isEqualTo(4);
        assertThat(e.get("cocoon_e2e_request_latency_seconds_count", "model", "m")).isZero();
    }

    @Test
    void finishedButNeverTakenByItsClient_countsAsStalled_notAsAnEndToEndLatency() {
        register("w1", "m");
        metrics.finished(new Outcome().tokens(10, 4, 28).stalled().build());

        Exposition e = Exposition.parse(metrics.scrape());
        assertThat(e.get("cocoon_request_errors_total", "code", Relay.STALLED)).isEqualTo(1);
        assertThat(e.get("cocoon_client_disconnects_total")).isEqualTo(1);
        assertThat(e.get("cocoon_e2e_request_latency_seconds_count", "model", "m")).isZero();
    }

    @Test
    void workerGauges_followWorkersComingAndGoing() {
        RegisteredWorker w1 = register("w1", "m");
        register("w2", "m");
        w1.started();

        Exposition both = Exposition.parse(metrics.scrape());
        assertThat(both.get("cocoon_workers_registered")).isEqualTo(2);
        assertThat(both.get("cocoon_gateway_worker_in_flight", "worker", "w1")).isEqualTo(1);
        assertThat(both.get("cocoon_gateway_worker_in_flight", "worker", "w2")).isZero();
        assertThat(both.get("cocoon_gateway_worker_capacity", "worker", "w2")).isEqualTo(4);
        assertThat(both.get("cocoon_gateway_worker_healthy", "worker", "w1")).isEqualTo(1);

        workers.remove(w1, WorkerRegistry.Departure.GONE);
        clock.addAndGet(TimeUnit.SECONDS.toNanos(10));  // w2 misses its heartbeats

        Exposition after = Exposition.parse(metrics.scrape());
        assertThat(after.get("cocoon_workers_registered")).isEqualTo(1);
        assertThat(after.find("cocoon_gateway_worker_in_flight", "worker", "w1")).isEmpty();
        assertThat(after.find("cocoon_gateway_worker_healthy", "worker", "w1")).isEmpty();
        assertThat(after.get("cocoon_gateway_worker_healthy", "worker", "w2")).isZero();
    }

    @Test
    void workerReRegisteringUnderItsId_isReadFromTheNewRegistration() {
        RegisteredWorker old = register("w1", "m");
        old.started();
        assertThat(Exposition.parse(metrics.scrape()).get("cocoon_gateway_worker_in_flight", "worker", "w1")).isEqualTo(1);

        register("w1", "m");  // replaces the old session

        assertThat(Exposition.parse(metrics.scrape()).get("cocoon_gateway_worker_in_flight", "worker", "w1")).isZero();
    }

    @Test
    void exposition_readsEscapedLabelValues() {
        Exposition e = Exposition.parse("# HELP x a help line\nx{a=\"q\\\"uo,te\",b=\"2\"} 3.5\ny +Inf\n");
        assertThat(e.get("x", "a", "q\"uo,te", "b", "2")).isEqualTo(3.5);
        assertThat(e.get("y")).isInfinite();
    }

    private RegisteredWorker register(String id, String model) {
        try {
            // One payment key and one endpoint per id: the same worker, as far as the registry can tell.
            return workers.register(Hello.newBuilder().setWorkerId(id).setEndpoint("http://" + id + ".workers.test:9")
                    .addModels(ModelRef.newBuilder().setName(model).setHash("abc").setMaxContext(4096)).setCapacity(4)
                    .setPaymentPublicKey(ByteString.copyFromUtf8("key-" + id)).build());
        } catch (WorkerRefusedException e) {
            throw new AssertionError(e);
        }
    }

    /** A successful outcome on model m, worker w1; each test changes what it is about. */
    private static final class Outcome {
        private String model = "m";
        private String worker = "w1";
        private int attempts = 1;
        private int status = 200;
        private String error;
        private String finish = "stop";
        private long prompt = 10;
        private long completion = 5;
        private long cost = 30;
        private long queueNanos = 1_000_000;
        private long ttftNanos = 20_000_000;
        private boolean clientGone;

        long liveCompletion;
        long liveCost;

        Outcome model(String model) {
            this.model = model;
            return this;
        }

        Outcome worker(String worker) {
            this.worker = worker;
            return this;
        }

        Outcome attempts(int attempts) {
            this.attempts = attempts;
            return this;
        }

        /** Finished ("stop"), but its client stopped reading before the end. */
        Outcome stalled() {
            this.clientGone = true;
            this.error = Relay.STALLED;
            return this;
        }

        Outcome failed(int status, String error) {
            this.status = status;
            this.error = error;
            this.finish = null;
            return this;
        }

        Outcome tokens(long prompt, long completion, long cost) {
            this.prompt = prompt;
            this.completion = completion;
            this.cost = cost;
            return this;
        }

        /** Of its tokens and cost, those already counted while it ran. */
        Outcome live(long completion, long cost) {
            this.liveCompletion = completion;
            this.liveCost = cost;
            return this;
        }

        Outcome timings(long queueNanos, long ttftNanos) {
            this.queueNanos = queueNanos;
            this.ttftNanos = ttftNanos;
            return this;
        }

        Outcome clientGone() {
            this.clientGone = true;
            this.finish = null;
            return this;
        }

        RequestOutcome build() {
            return new RequestOutcome("req-1", "key-1", "/v1/chat/completions", model, ServiceTier.DEFAULT, true, worker, attempts, status, error,
                    finish, prompt, completion, cost, queueNanos, ttftNanos, ttftNanos < 0 ? -1 : 40_000, 80_000_000, clientGone, -1, liveCompletion, liveCost);
        }
    }
}
