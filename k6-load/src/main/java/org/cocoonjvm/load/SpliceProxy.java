package org.cocoonjvm.load;

import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The control for {@code bench gateway}: a TCP proxy that copies bytes between each client
 * connection and a connection of its own to a worker's OpenAI endpoint, parsing nothing. It puts
 * one more process on the path, as the gateway does (two more socket crossings and a thread to
 * wake each way) and does no other work, so what it adds to time to first token is what any proxy
 * would add on the machine and load of that run, and the gateway's added time less the control's
 * is the gateway's own. It runs on a Vert.x instance of its own with as many event loops as the
 * bench's gateway, and a client connection and its upstream connection share one.
 */
final class SpliceProxy {
    /** Vert.x shares a negative port among the servers that listen on it: one random port for all event loops. */
    private static final AtomicInteger SHARED_PORTS = new AtomicInteger(1000);

    private final Vertx vertx;
    private final SocketAddress upstream;
    private volatile int port;

    /** Deploys a proxy to {@code upstream} on {@code eventLoops} event loops of {@code vertx}, on a loopback port. */
    static SpliceProxy start(Vertx vertx, URI upstream, int eventLoops) {
        SpliceProxy proxy = new SpliceProxy(vertx, SocketAddress.inetSocketAddress(upstream.getPort(), upstream.getHost()));
        int shared = -SHARED_PORTS.incrementAndGet();
        vertx.deployVerticle(() -> proxy.new Loop(shared), new DeploymentOptions().setInstances(eventLoops)).await();
        return proxy;
    }

    private SpliceProxy(Vertx vertx, SocketAddress upstream) {
        this.vertx = vertx;
        this.upstream = upstream;
    }

    /** The proxy as a target: {@code like}'s key and model, this proxy's address. */
    Target target(Target like) {
        return new Target(URI.create("http://127.0.0.1:" + port), like.apiKey(), like.model());
    }

    /** One event loop's server and the client it opens upstream connections with. */
    private final class Loop extends VerticleBase {
        private final int listenPort;
        private NetClient client;

        Loop(int listenPort) {
            this.listenPort = listenPort;
        }

        @Override
        public Future<?> start() {
            client = vertx.createNetClient();
            NetServer server = vertx.createNetServer(new NetServerOptions().setHost("127.0.0.1").setPort(listenPort))
                    .connectHandler(this::splice);
            return server.listen().onSuccess(bound -> port = bound.actualPort());
        }

        private void splice(NetSocket downstream) {
            downstream.pause();
            client.connect(upstream).onComplete(connected -> {
                if (connected.failed()) {
                    downstream.close();
                    return;
                }
                NetSocket up = connected.result();
                // Each pipe ends the other side when its source ends or fails.
                downstream.pipeTo(up);
                up.pipeTo(downstream);
            });
        }
    }
}
