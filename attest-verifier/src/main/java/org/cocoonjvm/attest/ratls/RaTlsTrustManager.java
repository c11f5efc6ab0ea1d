package org.cocoonjvm.attest.ratls;

import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Objects;
import java.util.function.Consumer;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Trusts exactly the peers whose RA-TLS certificate {@link RaTlsVerifier} accepts, on both sides
 * of a handshake (client and server), so mutual TLS works with one instance per node. JSSE's PKIX
 * would reject the unknown critical extensions, which is why this does not delegate to it. No
 * host name check: the attested key, not a DNS name, identifies the peer.
 */
public final class RaTlsTrustManager extends X509ExtendedTrustManager {
  private static final Logger LOG = LoggerFactory.getLogger(RaTlsTrustManager.class);
  private static final X509Certificate[] NO_ISSUERS = new X509Certificate[0];

  /**
   * What happened to one peer certificate; exactly one of peer and refusal is set.
   *
   * @param remote the peer's {@code host:port} as the TLS engine knows it, {@code "unknown"} if not
   */
  public record Outcome(String side, RaTlsPeer peer, RaTlsException refusal, String remote) {
    public boolean accepted() {
      return peer != null;
    }
  }

  private final RaTlsVerifier verifier;
  private final Consumer<Outcome> listener;

  /** @param listener sees every outcome (for metrics, admin views, tests); must not throw */
  public RaTlsTrustManager(RaTlsVerifier verifier, Consumer<Outcome> listener) {
    this.verifier = Objects.requireNonNull(verifier, "verifier");
    this.listener = Objects.requireNonNull(listener, "listener");
  }

  public RaTlsTrustManager(RaTlsVerifier verifier) {
    this(verifier, o -> {});
  }

  public RaTlsVerifier verifier() {
    return verifier;
  }

  private void check(X509Certificate[] chain, String side, String remote) throws CertificateException {
    try {
      RaTlsPeer peer = verifier.verify(chain);
      listener.accept(new Outcome(side, peer, null, remote));
    } catch (RaTlsException e) {
      LOG.warn("RA-TLS {} certificate from {} refused: {}", side, remote, e.getMessage());
      listener.accept(new Outcome(side, null, e, remote));
      throw e;
    }
  }

  private static String remote(SSLEngine engine) {
    return engine == null || engine.getPeerHost() == null ? "unknown" : engine.getPeerHost() + ":" + engine.getPeerPort();
  }

  private static String remote(Socket socket) {
    return socket == null || socket.getRemoteSocketAddress() == null ? "unknown" : socket.getRemoteSocketAddress().toString();
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    check(chain, "client", "unknown");
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    check(chain, "server", "unknown");
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    check(chain, "client", remote(socket));
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    check(chain, "server", remote(socket));
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    check(chain, "client", remote(engine));
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    check(chain, "server", remote(engine));
  }

  /** None: the server's CertificateRequest names no CAs, since RA-TLS certificates are self-signed. */
  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return NO_ISSUERS;
  }
}
