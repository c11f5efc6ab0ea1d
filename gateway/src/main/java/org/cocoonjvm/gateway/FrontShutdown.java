package org.cocoonjvm.gateway;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.cocoonjvm.gateway.metrics.GatewayMetrics;
import org.cocoonjvm.gateway.relay.RunningRelays;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One front's stop, on its event loop: the drain (the port still serves, /ready says 503), the
 * port kept for probes and scrapes while the grace lets streams finish, the cut of what is left
 * near the grace's end, and a fence that ends all of it early. Apart from {@link GatewayNode}'s
 * front because this is the front's only state that changes after it starts, and its order is the
 * point: every step's reason is an audit finding.
 */
final class FrontShutdown {
    // The node's logger: operators' settings and the shutdown tests read these lines under its name.
    private static final Logger log = LoggerFactory.getLogger(GatewayNode.class);
    /** How often a stopping front looks for the scrape that ends its linger. */
    private static final long LINGER_POLL_MS = 50;

    private final Vertx vertx;
    private final Context context;
    private final ShutdownOptions shutdown;
    private final RunningRelays running;
    private final GatewayMetrics metrics;
    /** Another process took the gateway's ledger lease: no drain, no grace, no linger. */
    private final BooleanSupplier fenced;
    /** Run when the drain is over: from then on the port serves the probes and scrapes only. */
    private final Runnable probesOnly;
    /** Completed by the stop: the relays ended at the cut have settled, or the server is closed. */
    private final Promise<Void> settled = Promise.promise();
    /** The stop's drain: null until the stop begins; completed early by a fence. The front's event loop only. */
    private Promise<Void> draining;
    /** The timer of the stop's cut once the drain is over; -1 before. The front's event loop only. */
    private long cutTimer = -1;
    private boolean cutDone;

    FrontShutdown(Vertx vertx, Context context, ShutdownOptions shutdown, RunningRelays running, GatewayMetrics metrics,
                  BooleanSupplier fenced, Runnable probesOnly) {
        this.vertx = vertx;
        this.context = context;
        this.shutdown = shutdown;
        this.running = running;
        this.metrics = metrics;
        this.fenced = fenced;
        this.probesOnly = probesOnly;
    }

    /** Completes once the stop has no relay of this front left to settle: all settled, or its server closed. */
    Future<Void> settled() {
        return settled.future();
    }

    /** Drains, serves the probes through the grace, then shuts {@code server} down; completes once it is closed. */
    Future<Void> stop(HttpServer server) {
        // A fenced gateway's requests are billed to nobody from the fence on: no drain, no grace.
        draining = Promise.promise();
        if (shutdown.drainMs() == 0 || fenced.getAsBoolean()) {
            draining.complete();
        } else {
            vertx.setTimer(shutdown.drainMs(), id -> draining.tryComplete());
        }
        // The port stays open past the drain, for the probes and scrapes only (audit V, V-2: it
        // closed at the drain's end, and what the streams of the grace did, their tokens, cost
        // and shutting_down errors, reached no scrape), until every relay of this front has been
        // recorded (or the grace is over), and for the linger after. Then shutdown, not close:
        // stop accepting, let open streams finish until the grace ends, then cut what is left.
        // What is still running near the end is ended first, so that its client is told why.
        // Without attestation the worker sessions on this port hold the server open until they
        // close, after the last payment round, which waits for this front's relays to settle.
        return draining.future().compose(v -> {
            probesOnly.run();
            long graceEnds = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(shutdown.graceMs());
            cutTimer = vertx.setTimer(fenced.getAsBoolean() ? 1 : Math.max(1, shutdown.graceMs() - shutdown.cutMarginMs()),
                    id -> cut());
            return recordedOrGraceOver(shutdown.graceMs())
                    .compose(recorded -> lingerForAScrape(shutdown.metricsLingerMs()))
                    .compose(lingered -> server.shutdown(Math.max(1,
                            TimeUnit.NANOSECONDS.toMillis(graceEnds - System.nanoTime())), TimeUnit.MILLISECONDS))
                    .eventually(() -> Future.succeededFuture(vertx.cancelTimer(cutTimer)));
        }).eventually(() -> Future.succeededFuture(settled.tryComplete()));  // closed: nothing more can run here
    }

    /**
     * The fence came while this front was already stopping (review U, U-1: the stop read the
     * flag once, at its start, and the drain and grace ran on in full, billed to nobody): what
     * is left of them ends now, on this front's event loop. A front not stopping yet reads the
     * flag when its stop begins.
     */
    void fencedWhileStopping() {
        context.runOnContext(v -> {
            if (draining == null || draining.tryComplete()) {
                return;  // not stopping yet, or in its drain: the cut follows at once, as the flag is set
            }
            if (cutTimer >= 0 && vertx.cancelTimer(cutTimer)) {
                cut();
            }
        });
    }

    /** Completes once every relay of this front has been reported, or the grace is over. */
    private Future<Void> recordedOrGraceOver(long graceMs) {
        Promise<Void> over = Promise.promise();
        long timer = vertx.setTimer(graceMs, id -> over.tryComplete());
        running.reported().onComplete(all -> {
            vertx.cancelTimer(timer);
            over.tryComplete();
        });
        return over.future();
    }

    /**
     * Keeps the port open for the probes and scrapes until a scrape has read the metrics, every
     * relay of this front recorded, or for {@code lingerMs} at most; not once fenced (the process
     * that took over may want the port). The port closes with the last front to close it, so it
     * stays open until a scrape after the last relay of all, or the linger.
     */
    private Future<Void> lingerForAScrape(long lingerMs) {
        if (lingerMs == 0 || fenced.getAsBoolean()) {
            return Future.succeededFuture();
        }
        long scrapesBefore = metrics.scrapes();
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(lingerMs);
        Promise<Void> lingered = Promise.promise();
        vertx.setPeriodic(1, LINGER_POLL_MS, id -> {
            if (metrics.scrapes() > scrapesBefore || fenced.getAsBoolean() || System.nanoTime() - until >= 0) {
                vertx.cancelTimer(id);
                lingered.tryComplete();
            }
        });
        return lingered.future();
    }

    private void cut() {
        if (!cutDone) {
            cutDone = true;
            endRunning(fenced.getAsBoolean());
            running.emptied().onComplete(none -> settled.tryComplete());
        }
    }

    private void endRunning(boolean fencedOut) {
        if (running.size() > 0) {
            // Each front counts its own: the relays belong to its event loop.
            log.info("{}: stopping {} running request(s) on this event loop", fencedOut ? "fenced" : "shutdown grace ends",
                    running.size());
            running.endAll(ApiException.retryLater(ErrorKind.SHUTTING_DOWN, fencedOut
                    ? "The gateway is shutting down: another process took over its ledger, which billed this request "
                    + "what it had recorded of it, which may be less than the usage shown here. Send the request again."
                    : "The gateway is shutting down and its grace for running requests ran out; what was generated is "
                    + "billed. Send the request again.", 1),
                    // Half the margin: the other half sends the error events before the connections close.
                    shutdown.cutMarginMs() / 2);
        }
    }
}
