package org.cocoonjvm.gateway;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes a connection to a worker that stopped answering HTTP/2 PINGs. A worker that froze (a
 * stopped process, a hung VM) keeps its TCP connection up, its kernel acknowledging what is sent,
 * so a request routed to it would wait without a token or an error until its timeout (ten minutes
 * by default). Closed, the connection fails its streams: a request before its first token is
 * retried on another worker, one after it ends with an error event and is billed what it got. New
 * requests stop going to the worker on their own, once the registry misses its heartbeats.
 *
 * <p>The answer is awaited for as long as the registry waits for heartbeats
 * ({@code WorkerRegistry.silenceLimitMs}): a worker whose event loop is merely busy answers within
 * that, as its heartbeats do. A connection that a frozen worker never completed is not seen here;
 * the relay bounds a call's opening by the same limit.
 */
final class WorkerLiveness {
    private static final Logger log = LoggerFactory.getLogger(WorkerLiveness.class);

    private final Vertx vertx;
    private final HttpConnection connection;
    private final long answerWithinMs;
    /** A PING is out and unanswered: the next is not sent before it is answered or the connection closed. */
    private boolean awaiting;

    private WorkerLiveness(Vertx vertx, HttpConnection connection, long answerWithinMs) {
        this.vertx = vertx;
        this.connection = connection;
        this.answerWithinMs = answerWithinMs;
    }

    /**
     * For the worker transport's connect handler, on the connection's event loop: a PING every
     * heartbeat interval, answered within the registry's silence limit.
     */
    static void install(Vertx vertx, HttpConnection connection, WorkerRegistry registry) {
        if (!(connection instanceof ConnectionBase base)) {
            return;
        }
        WorkerLiveness liveness = new WorkerLiveness(vertx, connection, registry.silenceLimitMs());
        long timer = vertx.setPeriodic(registry.heartbeatIntervalMs(), id -> liveness.ping());
        base.channel().closeFuture().addListener(closed -> vertx.cancelTimer(timer));
    }

    private void ping() {
        if (awaiting) {
            return;
        }
        awaiting = true;
        long deadline = vertx.setTimer(answerWithinMs, id -> {
            log.warn("worker at {} did not answer a PING within {} ms: closing its connection, failing its streams",
                    connection.remoteAddress(), answerWithinMs);
            connection.close();
        });
        connection.ping(Buffer.buffer(new byte[8])).onComplete(answered -> {
            vertx.cancelTimer(deadline);
            awaiting = false;
        });
    }
}
