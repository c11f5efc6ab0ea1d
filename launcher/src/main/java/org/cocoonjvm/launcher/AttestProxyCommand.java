package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import java.io.PrintWriter;
import java.time.Clock;
import java.util.concurrent.Callable;
import org.cocoonjvm.attest.ratls.RaTlsClientProxy;
import org.cocoonjvm.attest.ratls.RaTlsVerifier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code cocoon attest proxy}: the client's end of an attested gateway's client port. OpenAI SDKs
 * speak plain HTTP to it on loopback; it carries each connection to the gateway over TLS and checks
 * the certificate of that connection against the client's own gateway policy ({@link RaTlsClientProxy}).
 */
@Command(name = "proxy", mixinStandardHelpOptions = true,
        description = "Serve a loopback port for OpenAI clients (HTTP/1.1 and gRPC) that carries each connection to an "
                + "attested gateway's client port over RA-TLS, checking on every connection that the gateway's certificate "
                + "carries a quote for its TLS key that passes --policy. Prints one JSON line when ready.")
final class AttestProxyCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--gateway", required = true, paramLabel = "HOST:PORT", description = "The gateway's client port.")
    String gateway;

    @Option(names = "--listen", defaultValue = "8443", paramLabel = "PORT",
            description = "The loopback port to serve clients on; 0 picks a free one. Default: ${DEFAULT-VALUE}.")
    int listen;

    /** --attestation dev|tdx, the policy the gateway must pass, and what the mode needs to check it. */
    @Mixin
    AttestationChoice attestation;

    @Override
    public Integer call() throws Exception {
        Ports.checkRange("--listen", listen);
        SocketAddress target = address(gateway);
        RaTlsVerifier verifier = attestation.peerVerifier(Clock.systemUTC());
        Vertx vertx = Vertx.vertx();
        RaTlsClientProxy proxy = new RaTlsClientProxy(vertx, verifier, target);
        int port = Running.await(proxy.listen("127.0.0.1", listen), "the proxy's listener");
        PrintWriter out = spec.commandLine().getOut();
        out.println(new JsonObject().put("event", "ready").put("listen", "http://127.0.0.1:" + port)
                .put("gateway", gateway).encode());
        out.flush();
        Running.untilSignalled(vertx, 5_000, () -> { });
        return 0;
    }

    private static SocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        try {
            if (colon > 0) {
                int port = Integer.parseInt(hostPort.substring(colon + 1));
                if (port > 0 && port <= 65535) {
                    return SocketAddress.inetSocketAddress(port, hostPort.substring(0, colon));
                }
            }
        } catch (NumberFormatException ignored) {
            // said below
        }
        throw new Cocoon.UsageException("--gateway must be HOST:PORT (the gateway's client port), got '" + hostPort + "'");
    }
}
