package org.cocoonjvm.attest.ratls;

import io.vertx.core.Vertx;
import java.util.Objects;
import java.util.function.Consumer;
import javax.net.ssl.SSLSession;

/**
 * Keeps the peer of an open RA-TLS connection verified: it is verified again in place whenever
 * its verification is due ({@link RaTlsVerifier#verifiedUntil}: the verifier's cache has expired
 * by then, so the quote is checked afresh against current collateral), off the event loop. A
 * connection may outlive its peer's certificate and collateral by days; only its opening was
 * checked otherwise. Once the peer fails, its session is invalidated, so that no later connection
 * resumes it (a resumed session skips the handshake's check and keeps the refused certificate),
 * and the owner of the connection is told. Used by a node's peer links and by the client proxy's
 * gateway connections alike. Runs on the context that started it.
 */
public final class PeerWatch {
  private final Vertx vertx;
  private final RaTlsVerifier verifier;
  private final SSLSession session;
  private final Consumer<Throwable> refused;
  private long timer = -1;
  private boolean cancelled;

  private PeerWatch(Vertx vertx, RaTlsVerifier verifier, SSLSession session, Consumer<Throwable> refused) {
    this.vertx = Objects.requireNonNull(vertx, "vertx");
    this.verifier = Objects.requireNonNull(verifier, "verifier");
    this.session = Objects.requireNonNull(session, "session");
    this.refused = Objects.requireNonNull(refused, "refused");
  }

  /**
   * Watches a connection whose peer {@code peer} just passed {@code verifier} on {@code session}.
   *
   * @param refused runs once, with the verifier's refusal, when the peer no longer passes; it
   *                decides what becomes of the connection (shut down, closed)
   */
  public static PeerWatch start(Vertx vertx, RaTlsVerifier verifier, SSLSession session, RaTlsPeer peer,
      Consumer<Throwable> refused) {
    PeerWatch watch = new PeerWatch(vertx, verifier, session, refused);
    watch.arm(peer);
    return watch;
  }

  private void arm(RaTlsPeer peer) {
    long delayMs = Math.max(1, verifier.dueIn(peer).toMillis());
    timer = vertx.setTimer(delayMs, id -> vertx.executeBlocking(() -> verifier.verify(session)).onComplete(again -> {
      if (cancelled) {
        return;
      }
      if (again.succeeded()) {
        arm(again.result());
      } else {
        timer = -1;
        session.invalidate();
        refused.accept(again.cause());
      }
    }));
  }

  /** Stops watching: the connection closed. */
  public void cancel() {
    cancelled = true;
    if (timer >= 0) {
      vertx.cancelTimer(timer);
    }
  }
}
