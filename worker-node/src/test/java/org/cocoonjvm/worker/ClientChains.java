package org.cocoonjvm.worker;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.function.Supplier;

/**
 * Starts a test's Vert.x HTTP client call chain on an event loop, never on the test thread. Chains
 * started from the test thread left, now and then, a response that had arrived never completed
 * its future (the gateway's TestNetwork.onClientContext found 4 in 600 fresh gateways, 0 once
 * started on a context; here ChatTemplateAtStartTest's chat request waited out its 30 s once in CI).
 */
public final class ClientChains {
    private ClientChains() {
    }

    public static <T> Future<T> onContext(Vertx vertx, Supplier<Future<T>> chain) {
        Promise<T> result = Promise.promise();
        vertx.getOrCreateContext().runOnContext(v -> {
            Future<T> started;
            try {
                started = chain.get();
            } catch (RuntimeException e) {
                result.fail(e);  // not left unanswered: its caller would wait out its timeout for nothing
                return;
            }
            started.onComplete(result);
        });
        return result.future();
    }
}
