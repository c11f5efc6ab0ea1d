package org.cocoonjvm.gateway.registry;

import io.vertx.core.net.SocketAddress;
import java.util.List;
import org.cocoonjvm.gateway.attestation.AttestationState;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.WorkerLoad;

/**
 * A worker as the gateway knows it: what it announced in its Hello, plus live counters. The
 * announced part is immutable; counters are atomics because every event loop routes to it.
 */
public final class RegisteredWorker {
    /** Consecutive failures that open the circuit breaker. */
    static final int BREAKER_THRESHOLD = 3;
    static final long BREAKER_OPEN_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final Hello hello;
    private final AttestationState attestation;
    private final SocketAddress address;
    /**
     * Written by the worker's session when a channel replaces the one closing; read by routing and
     * relays, each of which reads it once per attempt, so an attempt is metered on the channel its
     * request names.
     */
    private volatile WorkerChannel channel;
    private final long registeredAtNanos;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final LongAdder tokensServed = new LongAdder();
    private final AtomicInteger consecutiveFailures = new AtomicInteger();
    private final LongAdder failures = new LongAdder();
    private volatile long breakerOpenUntilNanos;
    private volatile boolean breakerTripped;
    /** Decode speed per sequence, tokens/s, as an exponentially weighted average; 0 until measured. */
    private final AtomicLong speedBits = new AtomicLong(Double.doubleToLongBits(0));
    private volatile WorkerLoad load = WorkerLoad.getDefaultInstance();
    private volatile long lastSeenNanos;

    RegisteredWorker(Hello hello, AttestationState attestation, SocketAddress address, WorkerChannel channel, long nowNanos) {
        this.hello = hello;
        this.attestation = attestation;
        this.address = address;
        this.channel = channel;
        this.registeredAtNanos = nowNanos;
        this.lastSeenNanos = nowNanos;
    }

    public String id() {
        return hello.getWorkerId();
    }

    /** What it announced; the registry tells the same worker from another by it. */
    Hello hello() {
        return hello;
    }

    public String endpoint() {
        return hello.getEndpoint();
    }

    /** Where the gateway's gRPC client reaches the worker. */
    public SocketAddress address() {
        return address;
    }

    /** The payment channel new requests to this worker are paid over; null when payments are disabled. */
    public WorkerChannel channel() {
        return channel;
    }

    /** New requests are paid over {@code next}; those running stay on the channel they started on. */
    void paidBy(WorkerChannel next) {
        channel = next;
    }

    public List<ModelRef> models() {
        return hello.getModelsList();
    }

    public boolean serves(String model) {
        return model(model) != null;
    }

    /** What it announced for {@code model} (a name, or {@code name@hash}); null when it serves no such model. */
    public ModelRef model(String model) {
        for (ModelRef m : hello.getModelsList()) {
            if (ModelKeys.matches(m, model)) {
                return m;
            }
        }
        return null;
    }

    public int capacity() {
        return hello.getCapacity();
    }

    public String engine() {
        return hello.getEngine();
    }

    /** What the gateway verified when the worker registered; {@link AttestationState#NONE} on an unattested gateway. */
    public AttestationState attestation() {
        return attestation;
    }

    public int inFlight() {
        return inFlight.get();
    }

    public long tokensServed() {
        return tokensServed.sum();
    }

    public long failures() {
        return failures.sum();
    }

    public WorkerLoad load() {
        return load;
    }

    public long lastSeenNanos() {
        return lastSeenNanos;
    }

    public long registeredAtNanos() {
        return registeredAtNanos;
    }

    /** Tokens per second per sequence, as measured by the gateway; 0 until its first stream ends. */
    public double speed() {
        return Double.longBitsToDouble(speedBits.get());
    }

    /** A request was routed here; pair with {@link #finished}. */
    public void started() {
        inFlight.incrementAndGet();
    }

    public void finished(long completionTokens) {
        inFlight.decrementAndGet();
        tokensServed.add(completionTokens);
    }

    /** A stream decoded {@code tokens} tokens after its first in {@code nanos}. */
    public void recordSpeed(long tokens, long nanos) {
        if (tokens < 2 || nanos <= 0) {
            return;
        }
        double sample = tokens * 1e9 / nanos;
        speedBits.getAndUpdate(bits -> {
            double old = Double.longBitsToDouble(bits);
            return Double.doubleToLongBits(old == 0 ? sample : 0.8 * old + 0.2 * sample);
        });
    }

    /** The worker answered as it should; closes the breaker. */
    public void succeeded() {
        consecutiveFailures.set(0);
    }

    /** The worker broke a call (unreachable, reset, internal error); enough in a row opens the breaker. */
    public void failed(long nowNanos) {
        failures.increment();
        if (consecutiveFailures.incrementAndGet() >= BREAKER_THRESHOLD) {
            breakerOpenUntilNanos = nowNanos + BREAKER_OPEN_NANOS;
            breakerTripped = true;
            consecutiveFailures.set(0);
        }
    }

    /** When the breaker, if open, half-opens: routing tries the worker again from then on. */
    long breakerOpenUntilNanos() {
        return breakerOpenUntilNanos;
    }

    /** While open, routing skips the worker; afterwards one request probes it again. */
    public boolean breakerOpen(long nowNanos) {
        return breakerTripped && nowNanos - breakerOpenUntilNanos < 0;
    }

    void heartbeat(WorkerLoad load, long nowNanos) {
        this.load = load;
        this.lastSeenNanos = nowNanos;
    }
}
