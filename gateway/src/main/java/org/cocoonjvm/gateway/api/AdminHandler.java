package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.gateway.attestation.RefusedWorkers;
import org.cocoonjvm.gateway.billing.ChannelBilling;
import org.cocoonjvm.gateway.billing.WorkerChannel;
import org.cocoonjvm.gateway.billing.WorkerLifetime;
import org.cocoonjvm.gateway.registry.ModelKeys;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code GET /admin/workers}: each registered worker with its state (attestation and its payment
 * channel included), under {@code refused} the workers refused registration, and under
 * {@code absent_channels} the open channels of workers not attached now, with what they are owed,
 * for operators. {@code POST /admin/workers/{id}/cordon} and {@code .../uncordon} take a worker out
 * of routing and put it back ({@link org.cocoonjvm.gateway.registry.Cordons}).
 */
public final class AdminHandler implements Handler<RoutingContext> {
    private static final Logger log = LoggerFactory.getLogger(AdminHandler.class);
    private final WorkerRegistry registry;
    private final RefusedWorkers refused;
    private final ChannelBilling payments;

    /** @param payments null when payments are disabled */
    public AdminHandler(WorkerRegistry registry, RefusedWorkers refused, ChannelBilling payments) {
        this.registry = registry;
        this.refused = refused;
        this.payments = payments;
    }

    @Override
    public void handle(RoutingContext ctx) {
        JsonArray workers = new JsonArray();
        long now = registry.nanoTime();
        List<JsonObject> paidRows = new ArrayList<>();
        List<Future<WorkerChannel.View>> views = new ArrayList<>();
        for (RegisteredWorker w : registry.all()) {
            JsonArray models = new JsonArray();
            w.models().forEach(m -> models.add(ModelKeys.id(m)));
            JsonObject row = new JsonObject()
                    .put("id", w.id())
                    .put("endpoint", w.endpoint())
                    .put("engine", w.engine())
                    .put("models", models)
                    .put("healthy", registry.healthy(w))
                    .put("cordoned", registry.cordoned(w.id()))
                    .put("capacity", w.capacity())
                    .put("in_flight", w.inFlight())
                    .put("running", w.load().getRunning())
                    .put("waiting", w.load().getWaiting())
                    .put("tokens_served", w.tokensServed())
                    .put("failures", w.failures())
                    .put("circuit_open", w.breakerOpen(now))
                    .put("cap_reached", w.channel() != null && w.channel().capReached())
                    .put("channel_closing", w.channel() != null && (w.channel().closing() || w.channel().closingOnChain()))
                    .put("tokens_per_s", w.speed());
            w.attestation().into(row);
            workers.add(row);
            if (w.channel() == null) {
                row.put("billing", new JsonObject().put("payments", false));
            } else {
                paidRows.add(row);
                views.add(w.channel().view());
            }
        }
        Future<List<WorkerChannel.View>> absent = payments == null ? Future.succeededFuture(List.of()) : payments.absentViews();
        Future<List<WorkerChannel.View>> closing = payments == null ? Future.succeededFuture(List.of()) : payments.closingViews();
        Future<Map<PaymentPublicKey, WorkerLifetime>> lifetimes = payments == null ? Future.succeededFuture(Map.of())
                : payments.lifetimes();
        Future.all(Future.all(views), absent, closing, lifetimes).onSuccess(done -> {
            for (int i = 0; i < paidRows.size(); i++) {
                paidRows.get(i).put("billing", billing(views.get(i).result(), lifetimes.result()));
            }
            OpenAiResponses.json(ctx.response(), new JsonObject().put("workers", workers)
                    .put("refused", refused.toJson()).put("absent_channels", withOwner(absent.result(), lifetimes.result()))
                    .put("closing_channels", withOwner(closing.result(), lifetimes.result())).encode());
        });
    }

    /**
     * No new request goes to the worker from now on, also after it reconnects; its running ones
     * finish and are paid. Only a registered worker: an id mistyped would otherwise cordon nothing, silently.
     */
    public void cordon(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        RegisteredWorker worker = registry.all().stream().filter(w -> w.id().equals(id)).findFirst().orElse(null);
        if (worker == null) {
            RequestNotes.refuse(ctx, new ApiException(ErrorKind.NOT_FOUND, "No worker " + ApiException.shown(id)
                    + " is registered; see GET /admin/workers."));
            return;
        }
        boolean changed = registry.cordons().add(id);
        answerOnceSaved(ctx, changed, "cordoned", new JsonObject()
                .put("id", id).put("cordoned", true).put("changed", changed).put("in_flight", worker.inFlight()));
    }

    /** Back in routing. Any id: a cordoned worker may be away when its operator lets it back. */
    public void uncordon(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        boolean changed = registry.cordons().remove(id);
        answerOnceSaved(ctx, changed, "uncordoned", new JsonObject().put("id", id).put("cordoned", false).put("changed", changed));
    }

    /**
     * The change is in effect either way; a 500 when it could not be saved says so, since a
     * restart would then undo it.
     */
    private void answerOnceSaved(RoutingContext ctx, boolean changed, String done, JsonObject body) {
        String id = body.getString("id");
        if (changed) {
            // Only a change: an id that changed nothing may be anything the path held, not a worker's printable id.
            log.info("worker {} {} by the operator", id, done);
        }
        registry.cordons().save(ctx.vertx()).onComplete(saved -> {
            if (saved.failed()) {
                log.error("worker {} is {}, but saving that failed: a restart would undo it", ApiException.shown(id), done,
                        saved.cause());
                RequestNotes.refuse(ctx, new ApiException(ErrorKind.INTERNAL, "Worker " + ApiException.shown(id) + " is "
                        + done + " now, but saving that failed (" + saved.cause().getMessage() + "): a restart of the"
                        + " gateway would undo it. Fix the cause and send the request again."));
            } else {
                json(ctx, body);
            }
        });
    }

    private static void json(RoutingContext ctx, JsonObject body) {
        OpenAiResponses.json(ctx.response(), body.encode());
    }

    /** Whose money each is: the worker's last id, and its payment key, which no other worker can use. */
    private static JsonArray withOwner(List<WorkerChannel.View> channels, Map<PaymentPublicKey, WorkerLifetime> lifetimes) {
        JsonArray rows = new JsonArray();
        channels.forEach(view -> rows.add(billing(view, lifetimes).put("worker_id", view.workerId())
                .put("worker_key", view.workerKey().hex())));
        return rows;
    }

    /**
     * The channel's billing, and under {@code lifetime} its worker key's over every channel: the
     * channel's own figures start from 0 after each close, and an operator could not reconcile them
     * with the worker's lifetime {@code /earnings} (audit P, P-8).
     */
    private static JsonObject billing(WorkerChannel.View view, Map<PaymentPublicKey, WorkerLifetime> lifetimes) {
        WorkerLifetime lifetime = lifetimes.get(view.workerKey());
        return new JsonObject()
                .put("payments", true)
                .put("channel_id", view.id().hex())
                .put("owed_nanoton", view.owedNanoton())
                .put("seqno", view.signed().seqno())
                .put("sent_nanoton", view.signed().sentNanoton())
                .put("unpaid_nanoton", view.unpaidNanoton())
                .put("cap_nanoton", view.capNanoton())
                .put("cap_left_nanoton", view.capNanoton() - view.signed().sentNanoton())
                .put("channel_address", view.channelAddress())
                .put("session", view.session())
                .put("closed", view.closed())
                .put("close_on_chain", view.closeOnChain())
                .put("round_error", view.roundError())
                .put("lifetime", lifetime == null ? null : new JsonObject().put("channels", lifetime.channels())
                        .put("closed_channels", lifetime.closedChannels()).put("sent_nanoton", lifetime.sentNanoton())
                        .put("paid_out_nanoton", lifetime.paidOutNanoton()));
    }
}
