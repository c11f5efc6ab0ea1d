package org.cocoonjvm.worker.serve;

import io.vertx.core.net.SocketAddress;
import java.util.Objects;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
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
 * @param payments        the payment key's home, the credit window and how long to wait for payment
 */
public record WorkerOptions(String workerId, String host, int port, String apiKey, SocketAddress gateway,
                            SchedulerOptions scheduler, long shutdownGraceMs, WorkerPaymentOptions payments) {
    /** Payment state in memory only: for tests and the demo. */
    public WorkerOptions(String workerId, String host, int port, String apiKey, SocketAddress gateway,
                         SchedulerOptions scheduler, long shutdownGraceMs) {
        this(workerId, host, port, apiKey, gateway, scheduler, shutdownGraceMs, WorkerPaymentOptions.IN_MEMORY);
    }

    public WorkerOptions {
        Objects.requireNonNull(payments, "payments");
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
