package org.cocoonjvm.gateway.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;

/**
 * One model's histograms and token counters, registered together the first time the model is seen
 * (its inter-token histogram is {@link InterTokenHistogram}'s).
 */
record ModelMeters(Timer timeToFirstToken, Timer gatewayOverhead, Timer endToEnd, Timer queueTime, Timer cancelLatency,
                   Counter promptTokens, LoopCounter generationTokens, Counter billed) {

    /** Histogram buckets for LLM latencies: 1 ms (a fast decode step) to 60 s (a long reasoning prefill). */
    static final Duration[] LATENCY_BUCKETS = {
            ms(1), ms(2.5), ms(5), ms(10), ms(25), ms(50), ms(75), ms(100), ms(250), ms(500), ms(750),
            ms(1_000), ms(2_500), ms(5_000), ms(7_500), ms(10_000), ms(20_000), ms(30_000), ms(60_000)};

    /** Finer buckets for the gateway's own work, which is tens of microseconds when all is well. */
    static final Duration[] OVERHEAD_BUCKETS = {
            us(10), us(25), us(50), us(100), us(250), us(500), ms(1), ms(2.5), ms(5), ms(10), ms(25), ms(50), ms(100)};

    static ModelMeters register(MeterRegistry meters, String model) {
        return new ModelMeters(
                latency(meters, model, "cocoon.time.to.first.token", "From arrival to the first token sent to the client", LATENCY_BUCKETS),
                latency(meters, model, "cocoon.gateway.overhead", "The gateway's own share of time to first token: arrival"
                        + " until the worker call was written, plus passing the first token on", OVERHEAD_BUCKETS),
                latency(meters, model, "cocoon.e2e.request.latency", "From arrival to the end, for requests that finished (stop or length)", LATENCY_BUCKETS),
                latency(meters, model, "cocoon.request.queue.time", "From routing to the worker admitting the sequence", LATENCY_BUCKETS),
                latency(meters, model, "cocoon.cancel.latency", "From the gateway's cancel (client gone, deadline, stalled"
                        + " reader, shutdown) to the worker's final event: how long a cancelled sequence kept running", LATENCY_BUCKETS),
                tokens(meters, model, "cocoon.prompt", "Prompt tokens of relayed requests"),
                generation(meters, model),
                Counter.builder("cocoon.billed").baseUnit("nanoton").tag("model", model)
                        .description("Cost charged to clients: as payment rounds' checkpoints record it in the ledger, the"
                                + " rest when the request is settled").register(meters));
    }

    private static Timer latency(MeterRegistry meters, String model, String name, String description, Duration[] buckets) {
        return Timer.builder(name).tag("model", model).description(description)
                .serviceLevelObjectives(buckets).register(meters);
    }

    /** Counted as the relay passes tokens on, so per event loop ({@link LoopCounter}); held by the record. */
    private static LoopCounter generation(MeterRegistry meters, String model) {
        LoopCounter counter = new LoopCounter();
        FunctionCounter.builder("cocoon.generation", counter, LoopCounter::total).baseUnit("tokens").tag("model", model)
                .description("Completion tokens generated for requests and billed to them, including those a client that"
                        + " left never received; counted as they are relayed").register(meters);
        return counter;
    }

    private static Counter tokens(MeterRegistry meters, String model, String name, String description) {
        return Counter.builder(name).baseUnit("tokens").tag("model", model).description(description).register(meters);
    }

    private static Duration us(long micros) {
        return Duration.ofNanos(micros * 1_000);
    }

    private static Duration ms(double millis) {
        return Duration.ofNanos(Math.round(millis * 1_000_000));
    }
}
