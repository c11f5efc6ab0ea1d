package org.cocoonjvm.worker.serve;

import io.netty.util.NetUtil;
import io.vertx.core.net.HostAndPort;
import io.vertx.core.net.SocketAddress;
import java.net.InetAddress;
import java.util.Objects;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;

/**
 * Everything a worker process is configured with; validated once, never changed.
 *
 * @param workerId        stable name shown by the gateway
 * @param host            interface to bind; also the host in the endpoint announced to gateways,
 *                        unless {@code advertise} says otherwise
 * @param port            0 picks a free port
 * @param apiKey          bearer key for the worker's own OpenAI API; null leaves it open
 * @param gateway         the gateway's gRPC address to register with; null runs standalone
 * @param scheduler       batching limits
 * @param shutdownGraceMs how long running sequences may finish after a stop is asked for
 * @param payments        the payment key's home, the credit window and how long to wait for payment
 * @param advertise       {@code host} or {@code host:port} announced to gateways in place of the
 *                        bound ones (a wildcard bind, NAT, a port forward); null announces those
 */
public record WorkerOptions(String workerId, String host, int port, String apiKey, SocketAddress gateway,
                            SchedulerOptions scheduler, long shutdownGraceMs, WorkerPaymentOptions payments,
                            String advertise) {
    public WorkerOptions(String workerId, String host, int port, String apiKey, SocketAddress gateway,
                         SchedulerOptions scheduler, long shutdownGraceMs, WorkerPaymentOptions payments) {
        this(workerId, host, port, apiKey, gateway, scheduler, shutdownGraceMs, payments, null);
    }

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
        HostAndPort advertised = advertise == null ? null : HostAndPort.parseAuthority(advertise, 0);
        if (advertise != null && (advertised == null || advertised.host().isEmpty())) {
            throw new IllegalArgumentException("advertise must be host or host:port, got '" + advertise + "'");
        }
        if (gateway != null && advertise == null && isWildcard(host)) {
            throw new IllegalArgumentException("bound to " + host + " (every interface), the worker has no one address to "
                    + "give its gateway: name it with --advertise HOST[:PORT]");
        }
    }

    /** What gateways are told to call: {@code advertise}, its port defaulting to the bound one. */
    public String announcedAuthority(int boundPort) {
        if (advertise == null) {
            return host + ":" + boundPort;
        }
        HostAndPort a = HostAndPort.parseAuthority(advertise, boundPort);
        return a.host() + ":" + a.port();
    }

    /** Whether {@code host} is reachable from this machine only; a name other than localhost may resolve anywhere. */
    public static boolean isLoopback(String host) {
        InetAddress literal = NetUtil.createInetAddressFromIpAddressString(
                host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host);
        return host.equals("localhost") || literal != null && literal.isLoopbackAddress();
    }

    private static boolean isWildcard(String host) {
        return host.equals("0.0.0.0") || host.equals("::") || host.equals("[::]");
    }
}
