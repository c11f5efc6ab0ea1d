package org.cocoonjvm.gateway.api;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.RoutingContext;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.limits.RateLimiter;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.gateway.relay.Relay;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.CompletionMeta;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.JsonWriter;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.openai.SseWriter;
import org.cocoonjvm.protocol.openai.ValidRequest;

/**
 * {@code POST /v1/chat/completions} and {@code POST /v1/completions}: validate, take the key's
 * rate-limit permit, reserve the most the request can cost, then hand it to a {@link Relay}.
 * Each step either passes or answers with its own OpenAI error.
 */
public final class CompletionsHandler implements Handler<RoutingContext> {
    /** The routing context key under which authentication leaves the caller's {@link ApiKey}. */
    public static final String API_KEY = "cocoon.apiKey";

    private final Relay.Context relay;
    private final Function<Buffer, ValidRequest> parser;
    private final RateLimiter limiter;
    private final RequestBilling billing;

    public CompletionsHandler(Relay.Context relay, Function<Buffer, ValidRequest> parser, RateLimiter limiter,
                              RequestBilling billing) {
        this.relay = relay;
        this.parser = parser;
        this.limiter = limiter;
        this.billing = billing;
    }

    @Override
    public void handle(RoutingContext ctx) {
        ApiKey key = ctx.get(API_KEY);
        ValidRequest request;
        RateLimiter.Permit permit = null;
        RequestBilling.Charge charge;
        try {
            request = parser.apply(ctx.body().buffer());
            WorkerRegistry registry = relay.registry();
            int context = registry.maxContext(request.model());
            long maxTokens = request.maxTokens() > 0 ? request.maxTokens() : Math.max(context, 1);
            // A character is at least one token in no tokenizer we know; it is a safe upper bound.
            permit = limiter.acquire(key.id(), key.limits(), request.promptCharacters() + maxTokens);
            charge = billing.reserve(key.accountId(), request.model(), maxTokens, request.promptCharacters());
        } catch (ApiException e) {
            if (permit != null) {
                permit.release(0);
            }
            OpenAiResponses.error(ctx.response(), e);
            return;
        }
        String id = request.idPrefix() + randomId();
        // Usage (with its cost) is always sent: billing clients must never miss it.
        CompletionMeta meta = new CompletionMeta(id, System.currentTimeMillis() / 1000, request.model(), true, request.flavor());
        CompletionSink sink = request.stream() ? new SseWriter(ctx.response(), meta) : new JsonWriter(ctx.response(), meta);
        Relay r = new Relay(relay, new Relay.Request(id, key.id(), request.generate(id),
                new WorkerRegistry.Route(request.model(), request.tier(), java.util.Set.of(), request.prefixHash()),
                request.stream()), sink, permit, charge);
        ctx.response().closeHandler(v -> r.clientGone());
        r.start();
    }

    /** Ids name requests in logs; they need to be unique, not secret, so no SecureRandom here. */
    private static String randomId() {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        return Long.toHexString(random.nextLong() | Long.MIN_VALUE) + Long.toHexString(random.nextLong() | Long.MIN_VALUE);
    }
}
