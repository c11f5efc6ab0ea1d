package org.cocoonjvm.gateway.registry;

import io.vertx.core.net.SocketAddress;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.WorkerLoad;

/**
 * A worker as the gateway knows it: what it announced in its Hello, plus live counters. The
 * announced part is immutable; counters are atomics because every event loop routes to it.
 */
public final class RegisteredWorker {
    private final Hello hello;
    private final SocketAddress address;
    private final long registeredAtNanos;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final LongAdder tokensServed = new LongAdder();
    private volatile WorkerLoad load = WorkerLoad.getDefaultInstance();
    private volatile long lastSeenNanos;

    RegisteredWorker(Hello hello, SocketAddress address, long nowNanos) {
        this.hello = hello;
        this.address = address;
        this.registeredAtNanos = nowNanos;
        this.lastSeenNanos = nowNanos;
    }

    public String id() {
        return hello.getWorkerId();
    }

    public String endpoint() {
        return hello.getEndpoint();
    }

    /** Where the gateway's gRPC client reaches the worker. */
    public SocketAddress address() {
        return address;
    }

    public List<ModelRef> models() {
        return hello.getModelsList();
    }

    public boolean serves(String model) {
        for (ModelRef m : hello.getModelsList()) {
            if (m.getName().equals(model) || (m.getName() + "@" + m.getHash()).equals(model)) {
                return true;
            }
        }
        return false;
    }

    public int capacity() {
        return hello.getCapacity();
    }

    public String engine() {
        return hello.getEngine();
    }

    /** Until the attestation verifier lands, no evidence is checked; the state says so. */
    public String attestation() {
        return hello.getAttestationEvidence().isEmpty() ? "none" : "unverified";
    }

    public int inFlight() {
        return inFlight.get();
    }

    public long tokensServed() {
        return tokensServed.sum();
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

    /** A request was routed here; pair with {@link #finished}. */
    public void started() {
        inFlight.incrementAndGet();
    }

    public void finished(long completionTokens) {
        inFlight.decrementAndGet();
        tokensServed.add(completionTokens);
    }

    void heartbeat(WorkerLoad load, long nowNanos) {
        this.load = load;
        this.lastSeenNanos = nowNanos;
    }
}
