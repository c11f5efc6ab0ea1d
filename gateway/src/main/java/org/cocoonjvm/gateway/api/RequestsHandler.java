package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.util.regex.Pattern;
import org.cocoonjvm.billing.accounts.BilledRequest;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;

/**
 * {@code GET /v1/requests/{id}}: what one of the calling key's account's requests used and cost,
 * by its {@code x-request-id} (the completion's id). A client whose stream ended before its usage
 * arrived (the user pressed stop, the connection dropped) learns here what it was charged.
 *
 * <p>The usage is shaped as a stream's {@code usage}, less the prompt/completion split of the cost,
 * which the ledger does not keep (prices may have changed since, so it is not priced again). Which
 * worker served the request is left out: workers are the operator's business. Authentication has
 * already run; the ledger is read off the event loop.
 */
public final class RequestsHandler implements Handler<RoutingContext> {
    public static final String PATH = "/v1/requests/:id";
    /** The ledger's {@code requests.request_id} column; the gateway's own ids are under 50 characters. */
    private static final int MOST_ID_CHARS = 100;
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1," + MOST_ID_CHARS + "}");

    private final RequestBilling billing;

    public RequestsHandler(RequestBilling billing) {
        this.billing = billing;
    }

    @Override
    public void handle(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        if (!ID.matcher(id).matches()) {
            RequestNotes.refuse(ctx, ApiException.invalid(null, ApiException.shown(id) + " is not a request id: one is 1 to "
                    + MOST_ID_CHARS + " letters, digits, '-' or '_', such as a completion's x-request-id header (chatcmpl-…, cmpl-…)."));
            return;
        }
        ApiKey key = ctx.get(CompletionsHandler.API_KEY);
        Future.fromCompletionStage(billing.request(key.accountId(), id), ctx.vertx().getOrCreateContext())
                .onSuccess(found -> found.ifPresentOrElse(
                        request -> OpenAiResponses.json(ctx.response(), json(request).encode()),
                        () -> RequestNotes.refuse(ctx, notFound(id))))
                .onFailure(failure -> RequestNotes.refuse(ctx, Admission.apiException(failure,
                        "The request could not be read; try again.")));
    }

    /** Unknown, another account's and not yet settled read the same: nobody learns of another's requests. */
    private static ApiException notFound(String id) {
        return new ApiException(ErrorKind.NOT_FOUND, "No billed request '" + id + "' on this API key's account. A request is "
                + "recorded when it is settled, moments after it ends (a settlement the ledger could not take at once is "
                + "retried in the background), so look again shortly; one that used no tokens is billed nothing and not recorded.");
    }

    static JsonObject json(BilledRequest request) {
        TokenCounts tokens = request.tokens();
        return new JsonObject()
                .put("id", request.requestId())
                .put("object", "request")
                .put("model", request.model())
                .put("settled_at", request.settledAt().getEpochSecond())
                .put("usage", new JsonObject()
                        .put("prompt_tokens", tokens.prompt())
                        .put("completion_tokens", tokens.completion())
                        .put("total_tokens", tokens.prompt() + tokens.completion())
                        .put("prompt_tokens_details", new JsonObject().put("cached_tokens", tokens.cached()))
                        .put("completion_tokens_details", new JsonObject().put("reasoning_tokens", tokens.reasoning()))
                        .put("total_cost", request.chargedNanoton()));
    }
}
