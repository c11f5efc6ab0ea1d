package org.cocoonjvm.gateway;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.server.GrpcServer;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.gateway.api.AdminHandler;
import org.cocoonjvm.gateway.api.ChatCompletionsHandler;
import org.cocoonjvm.gateway.api.ModelsHandler;
import org.cocoonjvm.gateway.registry.SessionEndpoint;
import org.cocoonjvm.gateway.registry.WorkerRegistry;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.OpenAiResponses;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway: one port serving the OpenAI HTTP API for clients and the gRPC {@code Gateway}
 * service for workers. Deploy it as a verticle; undeploying closes the port.
 */
public final class GatewayNode extends VerticleBase {
    private static final Logger log = LoggerFactory.getLogger(GatewayNode.class);

    private final GatewayOptions options;
    private final WorkerRegistry registry;
    private HttpServer server;
    private GrpcClient workers;
    private volatile int port;

    public GatewayNode(GatewayOptions options) {
        this.options = options;
        this.registry = new WorkerRegistry(options.heartbeatIntervalMs(), System::nanoTime);
    }

    @Override
    public Future<?> start() {
        GrpcServer grpc = GrpcServer.server(vertx);
        new SessionEndpoint(registry).bind(grpc);
        workers = GrpcClient.client(vertx);
        Router http = router();
        server = vertx.createHttpServer(new HttpServerOptions().setHost(options.host()).setPort(options.port()))
                .requestHandler(request -> (isGrpc(request) ? grpc : http).handle(request));
        return server.listen().onSuccess(bound -> {
            port = bound.actualPort();
            log.info("gateway listening on http://{}:{}", options.host(), port);
        });
    }

    private Router router() {
        Router router = Router.router(vertx);
        router.route("/v1/*").handler(ctx -> requireKey(ctx, options.apiKeyHashes()));
        router.route("/admin/*").handler(ctx -> requireKey(ctx, Set.of(options.adminKeyHash())));
        router.get("/v1/models").handler(new ModelsHandler(registry));
        router.post("/v1/chat/completions").handler(BodyHandler.create(false).setBodyLimit(options.maxBodyBytes()));
        router.post("/v1/chat/completions").handler(new ChatCompletionsHandler(registry, workers));
        router.get("/admin/workers").handler(new AdminHandler(registry));
        router.route().last().handler(ctx -> OpenAiResponses.error(ctx.response(),
                new ApiException(ErrorKind.NOT_FOUND, "No route for " + ctx.request().method() + " " + ctx.request().path() + ".")));
        router.errorHandler(413, ctx -> OpenAiResponses.error(ctx.response(), new ApiException(ErrorKind.PAYLOAD_TOO_LARGE,
                "The request body exceeds " + options.maxBodyBytes() + " bytes.")));
        return router;
    }

    private static void requireKey(RoutingContext ctx, Set<String> allowedHashes) {
        String hash = BearerKeys.hashOf(ctx.request());
        if (hash != null && allowedHashes.contains(hash)) {
            ctx.next();
        } else {
            OpenAiResponses.error(ctx.response(), BearerKeys.missingOrInvalid());
        }
    }

    private static boolean isGrpc(HttpServerRequest request) {
        String type = request.getHeader("content-type");
        return type != null && type.startsWith("application/grpc");
    }

    /** Running streams may finish for this long after a stop is asked for. */
    static final long SHUTDOWN_GRACE_MS = 6_000;

    @Override
    public Future<?> stop() {
        // shutdown, not close: stop accepting, let open streams finish, then cut what is left.
        Future<Void> closed = server == null ? Future.succeededFuture() : server.shutdown(SHUTDOWN_GRACE_MS, TimeUnit.MILLISECONDS);
        return closed.eventually(() -> workers == null ? Future.succeededFuture() : workers.close());
    }

    /** The bound port; set once started. */
    public int port() {
        return port;
    }

    public WorkerRegistry registry() {
        return registry;
    }
}
