package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.function.Function;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionMeta;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.JsonWriter;
import org.cocoonjvm.protocol.openai.RequestParser;
import org.cocoonjvm.protocol.openai.SseWriter;
import org.cocoonjvm.protocol.openai.ValidRequest;

/**
 * {@code POST /v1/chat/completions} and {@code POST /v1/completions}: validate, pass
 * {@link Admission} (rate-limit permit, billing reservation), then start the {@link Relay}.
 * Each step either passes or answers with its own OpenAI error.
 */
public final class CompletionsHandler implements Handler<RoutingContext> {
    /** The routing context key under which authentication leaves the caller's {@link ApiKey}. */
    public static final String API_KEY = "cocoon.apiKey";
    /** Response header with the request's id, as in its chunks and its access-log line. */
    public static final String REQUEST_ID_HEADER = "x-request-id";
    private static final String ARRIVAL = "cocoon.arrivalNanos";

    private final Admission admission;
    private final Function<JsonObject, ValidRequest> parser;

    /** @param parser validates the body, a JSON object */
    public CompletionsHandler(Admission admission, Function<JsonObject, ValidRequest> parser) {
        this.admission = admission;
        this.parser = parser;
    }

    /**
     * The first handler of the API's POST routes: notes when the request's head arrived, so that
     * time to first token and the gateway's overhead count reading the body and authenticating.
     */
    public static void arrived(RoutingContext ctx) {
        ctx.put(ARRIVAL, System.nanoTime());
        ctx.next();
    }

    @Override
    public void handle(RoutingContext ctx) {
        Long arrival = ctx.get(ARRIVAL);
        long arrivalNanos = arrival != null ? arrival : System.nanoTime();
        ApiKey key = ctx.get(API_KEY);
        HttpServerResponse response = ctx.response();
        ValidRequest request;
        try {
            JsonObject body = RequestParser.object(ctx.body().buffer());
            // Noted before validation: a refused request's line names the model it asked for, as a 402's does.
            if (body.getValue("model") instanceof String model) {
                RequestNotes.noteModel(ctx, model);
            }
            request = parser.apply(body);
        } catch (ApiException e) {
            RequestNotes.refuse(ctx, e);
            return;
        }
        Future<Admission.Admitted> admitting = admission.admit(key, request, ctx.request().path(), arrivalNanos);
        RequestNotes.noteAdmission(ctx, admitting);
        admitting.onComplete(admitted -> {
            if (admitted.failed()) {
                RequestNotes.refuse(ctx, (ApiException) admitted.cause());
                return;
            }
            response.putHeader(REQUEST_ID_HEADER, admitted.result().id());
            Relay relay = admitted.result().relay(sink(ctx.request(), request, admitted.result().id()));
            if (response.closed()) {
                relay.clientGone();   // left while the reservation was made: release it, run nothing
                return;
            }
            response.closeHandler(v -> relay.clientGone());
            relay.start();
        });
    }

    private static CompletionSink sink(HttpServerRequest http, ValidRequest request, String id) {
        // Usage (with its cost) is always sent: billing clients must never miss it.
        CompletionMeta meta = request.meta(id, true);
        return request.stream() ? new SseWriter(http, meta) : new JsonWriter(http, meta);
    }
}
