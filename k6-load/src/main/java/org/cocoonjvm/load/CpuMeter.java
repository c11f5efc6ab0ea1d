package org.cocoonjvm.load;

import io.netty.util.concurrent.EventExecutor;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ExecutionException;

/**
 * CPU time of the whole process and of each node's event loops, so a benchmark can say who spent a
 * phase's CPU: client, gateway or worker. What the event loops do not run (GC, the JIT, the
 * asynchronous log appender) is the process total less the three. Also the bytes allocated, by
 * the middle node's event loops and by the whole process: unlike CPU time, counts this machine's
 * noise does not move. The process's is what sets how often the shared heap's young collections
 * stop all three nodes (in "other", and in the tail of every latency); the middle node's, its
 * part in that.
 */
public final class CpuMeter {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /**
     * Nanoseconds of CPU: the process, and each node's event-loop threads; {@code gateway} is the
     * node in the middle, the gateway or another node measured in its place. {@code gatewayBytes}:
     * what the middle node's event loops allocated; {@code processBytes}: every thread of the
     * process, those that have ended included.
     */
    public record Sample(long process, long client, long gateway, long worker, long gatewayBytes, long processBytes) {
        public Sample minus(Sample o) {
            return new Sample(process - o.process, client - o.client, gateway - o.gateway, worker - o.worker,
                    gatewayBytes - o.gatewayBytes, processBytes - o.processBytes);
        }

        public Sample plus(Sample o) {
            return new Sample(process + o.process, client + o.client, gateway + o.gateway, worker + o.worker,
                    gatewayBytes + o.gatewayBytes, processBytes + o.processBytes);
        }

        /** Not on any node's event loop: GC, compilation, logging. */
        public long other() {
            return process - client - gateway - worker;
        }
    }

    public static final Sample ZERO = new Sample(0, 0, 0, 0, 0, 0);

    private final long[] client;
    private final long[] gateway;
    private final long[] worker;

    CpuMeter(Vertx client, Vertx gateway, Vertx worker) {
        this(client, gateway, "gateway", worker);
    }

    /** @param middleRole the middle node's name, prefixed to its threads' names */
    CpuMeter(Vertx client, Vertx middle, String middleRole, Vertx worker) {
        this.client = eventLoopThreads(client, "client");
        this.gateway = eventLoopThreads(middle, middleRole);
        this.worker = eventLoopThreads(worker, "worker");
    }

    public Sample read() {
        return new Sample(((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime(),
                cpu(client), cpu(gateway), cpu(worker), allocated(gateway), THREADS.getTotalThreadAllocatedBytes());
    }

    private static long allocated(long[] ids) {
        long sum = 0;
        for (long bytes : THREADS.getThreadAllocatedBytes(ids)) {
            sum += Math.max(0, bytes);
        }
        return sum;
    }

    private static long cpu(long[] ids) {
        long sum = 0;
        for (long id : ids) {
            sum += Math.max(0, THREADS.getThreadCpuTime(id));
        }
        return sum;
    }

    /**
     * Each event loop's thread, found by running a task on it (which also starts a loop not yet
     * started). The task also prefixes the thread's name with the node's role: three Vert.x
     * instances otherwise name their threads alike, and a profile or {@code top -H} could not tell
     * the gateway's from the worker's.
     */
    private static long[] eventLoopThreads(Vertx vertx, String role) {
        Set<Long> ids = new HashSet<>();
        try {
            for (EventExecutor loop : ((VertxInternal) vertx).nettyEventLoopGroup()) {
                ids.add(loop.submit(() -> {
                    Thread t = Thread.currentThread();
                    if (!t.getName().startsWith(role + "-")) {
                        t.setName(role + "-" + t.getName());
                    }
                    return t.threadId();
                }).get());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while finding event-loop threads", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("could not find an event loop's thread", e);
        }
        return ids.stream().mapToLong(Long::longValue).toArray();
    }
}
