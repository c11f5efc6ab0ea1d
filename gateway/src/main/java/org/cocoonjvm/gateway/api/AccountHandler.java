package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import org.cocoonjvm.gateway.billing.AccountView;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.protocol.openai.OpenAiResponses;

/**
 * {@code GET /v1/account}: the calling key's account in nanoTON (balance, held for requests in
 * flight, spent, available) and how to top it up: the gateway's TON address and the comment a
 * transfer to it must carry. Authentication has already run; the ledger is read off the event loop.
 */
public final class AccountHandler implements Handler<RoutingContext> {
    private final RequestBilling billing;

    public AccountHandler(RequestBilling billing) {
        this.billing = billing;
    }

    @Override
    public void handle(RoutingContext ctx) {
        ApiKey key = ctx.get(CompletionsHandler.API_KEY);
        Future.fromCompletionStage(billing.account(key.accountId()), ctx.vertx().getOrCreateContext())
                .onSuccess(account -> OpenAiResponses.json(ctx.response(), json(account).encode()))
                .onFailure(failure -> RequestNotes.refuse(ctx, Admission.apiException(failure,
                        "The account could not be read; try again.")));
    }

    static JsonObject json(AccountView account) {
        return new JsonObject()
                .put("object", "account")
                .put("balance_nanoton", account.balanceNanoton())
                .put("reserved_nanoton", account.reservedNanoton())
                .put("available_nanoton", account.availableNanoton())
                .put("spent_nanoton", account.spentNanoton())
                .put("deposit_address", account.depositAddress())
                .put("deposit_comment", account.depositComment());
    }
}
