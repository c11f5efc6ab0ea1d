package org.cocoonjvm.gateway.api;

import io.vertx.core.Handler;
import io.vertx.ext.web.RoutingContext;
import io.vertx.grpc.client.GrpcClient;
import java.util.concurrent.ThreadLocalRandom;
import org.cocoonjvm.gateway.registry.RegisteredWorker;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ChatRequestParser;
import org.cocoonjvm.protocol.openai.CompletionMeta;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.cocoonjvm.protocol.openai.JsonChatWriter;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.cocoonjvm.protocol.openai.SseChatWriter;
import org.cocoonjvm.protocol.openai.ValidChatRequest;

/** {@code POST /v1/chat/completions}: validate, pick a worker, relay its stream. */
public final class ChatCompletionsHandler implements Handler<RoutingContext> {
    private final WorkerRegistry registry;
    private final GrpcClient grpc;

    public ChatCompletionsHandler(WorkerRegistry registry, GrpcClient grpc) {
        this.registry = registry;
        this.grpc = grpc;
    }

    @Override
    public void handle(RoutingContext ctx) {
        ValidChatRequest request;
        RegisteredWorker worker;
        try {
            request = ChatRequestParser.parse(ctx.body().buffer());
            worker = registry.pick(request.model());
        } catch (ApiException e) {
            OpenAiResponses.error(ctx.response(), e);
            return;
        }
        String id = "chatcmpl-" + randomId();
        CompletionMeta meta = new CompletionMeta(id, System.currentTimeMillis() / 1000, request.model(), request.includeUsage());
        CompletionSink sink = request.stream() ? new SseChatWriter(ctx.response(), meta) : new JsonChatWriter(ctx.response(), meta);
        new ProxiedCall(grpc, worker, request.generate(id), ctx.response(), sink).start();
    }

    /** Ids name requests in logs; they need to be unique, not secret, so no SecureRandom here. */
    private static String randomId() {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        return Long.toHexString(random.nextLong() | Long.MIN_VALUE) + Long.toHexString(random.nextLong() | Long.MIN_VALUE);
    }
}
