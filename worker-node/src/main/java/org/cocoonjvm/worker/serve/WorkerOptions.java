package org.cocoonjvm.worker.serve;

import io.vertx.core.net.SocketAddress;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;

/**
 * Everything a worker process is configured with; validated once, never changed.
 *
 * @param workerId        stable name shown by the gateway
 * @param host            interface to bind; also the host in the endpoint announced to gateways
 * @param port            0 picks a free port
 * @param apiKey          bearer key for the worker's own OpenAI API; null leaves it open
 * @param gateway         the gateway's gRPC address to register with; null runs standalone
 * @param scheduler       batching limits
 * @param shutdownGraceMs how long running sequences may finish after a stop is asked for
 */
public record WorkerOptions(String workerId, String host, int port, String apiKey, SocketAddress gateway,
                            SchedulerOptions scheduler, long shutdownGraceMs) {
    public WorkerOptions {
        if (workerId == null || workerId.isBlank()) {
            throw new IllegalArgumentException("workerId is required");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port out of range: " + port);
        }
        if (shutdownGraceMs < 0) {
            throw new IllegalArgumentException("shutdownGraceMs must not be negative");
        }
    }
}
