package org.cocoonjvm.attest.ratls;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.function.Supplier;

/**
 * Starts a test's Vert.x client call chain on an event loop, never on the test thread, as the
 * worker's and gateway's tests do (worker-node's ClientChains, the gateway's
 * TestNetwork.onClientContext): chains started from the test thread left, now and then, a
 * response that had arrived never completing its future (4 in 600 fresh gateways there, 0 once
 * started on a context).
 */
final class ClientChains {
  private ClientChains() {
  }

  static <T> Future<T> onContext(Vertx vertx, Supplier<Future<T>> chain) {
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
