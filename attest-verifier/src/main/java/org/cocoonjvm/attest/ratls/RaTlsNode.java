package org.cocoonjvm.attest.ratls;

import io.vertx.core.Vertx;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.policy.TeeKind;
import org.cocoonjvm.attest.quote.QuoteFormatException;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.attest.tee.QuoteSource;
import org.cocoonjvm.attest.tee.QuoteSourceException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One attested node's RA-TLS side, shared by gateways and workers: its own identity (rotated
 * before expiry), the verifier for its peers (their policy, anchors and collateral), Vert.x TLS
 * options for its servers and clients, and the per-connection check that resumed TLS sessions
 * need. A node without attestation simply has none of these.
 */
public final class RaTlsNode {
  private static final Logger LOG = LoggerFactory.getLogger(RaTlsNode.class);
  /** How often the rotation timer looks at the certificate's remaining validity. */
  static final Duration ROTATION_CHECK = Duration.ofMinutes(10);
  /** How long connections whose peer attestation is due may finish their streams before they are cut. */
  static final long DUE_SHUTDOWN_GRACE_S = 30;

  private final QuoteSource quotes;
  private final TeeKind tee;
  private final AttestationVerifier attestations;
  private final CollateralSource collateral;
  private final RaTlsVerifier peers;
  private final Clock clock;
  private final Optional<DevTee> devTee;
  private final RaTlsIdentity.GpuEvidence gpuEvidence;
  private final NodeConfig config;
  private final RaTlsKeyManager keys;

  private RaTlsNode(QuoteSource quotes, TeeKind tee, AttestationVerifier attestations, CollateralSource collateral,
      Policy peerPolicy, Clock clock, Optional<DevTee> devTee, RaTlsIdentity.GpuEvidence gpuEvidence, NodeConfig config)
      throws QuoteSourceException {
    this.quotes = quotes;
    this.tee = tee;
    this.attestations = attestations;
    this.collateral = collateral;
    this.peers = new RaTlsVerifier(attestations, collateral, peerPolicy);
    this.clock = clock;
    this.devTee = devTee;
    this.gpuEvidence = gpuEvidence;
    this.config = Objects.requireNonNull(config, "config");
    this.keys = new RaTlsKeyManager(newIdentity());
  }

  /**
   * A development node: quotes from {@code tee}, peers verified under Intel's root plus the dev
   * root, with collateral made by the same dev TEE (nodes sharing a seed verify each other). The
   * peer policy still decides: without {@code allow_dev_tee} every dev peer is refused.
   */
  public static RaTlsNode dev(DevTee tee, Policy peerPolicy, Clock clock) throws QuoteSourceException {
    return dev(tee, peerPolicy, clock, null, NodeConfig.NONE);
  }

  /**
   * @param gpuEvidence evidence for each new certificate's key ({@link CommandGpuEvidence}); null for none
   * @param config what each certificate says of this node's configuration
   */
  public static RaTlsNode dev(DevTee tee, Policy peerPolicy, Clock clock, RaTlsIdentity.GpuEvidence gpuEvidence,
      NodeConfig config) throws QuoteSourceException {
    LOG.warn("RA-TLS with the DEVELOPMENT TEE: quotes are made in software, {}", tee.describe());
    AttestationVerifier v = AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(tee.root())), clock);
    return new RaTlsNode(tee, TeeKind.DEV, v, q -> tee.collateral(), peerPolicy, clock, Optional.of(tee), gpuEvidence, config);
  }

  /** A TDX node: quotes from the hardware (configfs-tsm), peers verified under Intel's root only. */
  public static RaTlsNode tdx(QuoteSource quotes, CollateralSource collateral, Policy peerPolicy, Clock clock,
      RaTlsIdentity.GpuEvidence gpuEvidence, NodeConfig config) throws QuoteSourceException {
    return new RaTlsNode(quotes, TeeKind.INTEL_TDX, AttestationVerifier.create(TrustAnchors.intel(), clock), collateral,
        peerPolicy, clock, Optional.empty(), gpuEvidence, config);
  }

  /** What peers see this node as: {@code TDX} or {@code dev (not hardware-backed)}. */
  public String tee() {
    return tee.label();
  }

  public RaTlsKeyManager keys() {
    return keys;
  }

  public RaTlsVerifier peers() {
    return peers;
  }

  /** TLS for this node's servers; {@code REQUIRED} for peer-only ports, {@code REQUEST} where others may connect too. */
  public HttpServerOptions server(HttpServerOptions options, ClientAuth clientAuth, Consumer<RaTlsTrustManager.Outcome> outcomes) {
    RaTlsVertx.server(options, keys, new RaTlsTrustManager(peers, outcomes));
    options.setClientAuth(clientAuth);
    return options.setUseAlpn(true);
  }

  /** TLS for this node's gRPC clients to peers: HTTP/2 by ALPN, presenting this node's certificate. */
  public HttpClientOptions grpcClient(Consumer<RaTlsTrustManager.Outcome> outcomes) {
    return RaTlsVertx.client(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setUseAlpn(true)
        .setHttp2ClearTextUpgrade(false), keys, new RaTlsTrustManager(peers, outcomes));
  }

  /**
   * Checks the peer of a new connection; the trust manager does not run on a resumed TLS 1.3
   * session, so every connection comes through here. A refused peer's connection is closed. An
   * accepted one is kept verified by a {@link PeerWatch}; once refused (certificate expired,
   * collateral changed) the connection is shut down gracefully and the peer must reconnect with a
   * fresh certificate. Takes the connection's close handler.
   *
   * @param onClose runs when the connection closes, whatever the verdict
   * @return the verified peer; empty when refused, or when the peer presented no certificate
   *     (possible only where client auth is {@code REQUEST}; that connection stays open)
   */
  public Optional<RaTlsPeer> admit(Vertx vertx, HttpConnection conn, Runnable onClose) {
    SSLSession session = conn.sslSession();
    PeerWatch[] watch = {null};  // armed once the peer passes, below
    conn.closeHandler(v -> {
      if (watch[0] != null) watch[0].cancel();
      onClose.run();
    });
    if (session == null || !presentedCertificate(session)) return Optional.empty();
    RaTlsPeer peer;
    try {
      peer = peers.verify(session);
    } catch (RaTlsException e) {
      LOG.warn("RA-TLS connection with {} closed: {}", conn.remoteAddress(), e.getMessage());
      conn.close();
      return Optional.empty();
    }
    watch[0] = PeerWatch.start(vertx, peers, session, peer, failure -> {
      LOG.warn("RA-TLS peer {} no longer verifies, connection shut down: {}", conn.remoteAddress(), failure.getMessage());
      conn.shutdown(DUE_SHUTDOWN_GRACE_S, TimeUnit.SECONDS);
    });
    return Optional.of(peer);
  }

  private static boolean presentedCertificate(SSLSession session) {
    try {
      return session.getPeerCertificates().length > 0;
    } catch (SSLPeerUnverifiedException e) {
      return false;
    }
  }

  /**
   * Replaces the certificate once less than half its validity is left. Quoting may block
   * (configfs-tsm), so it runs off the event loop. Returns the timer id to cancel on stop.
   */
  public long startRotation(Vertx vertx) {
    return vertx.setPeriodic(ROTATION_CHECK.toMillis(), id -> vertx.executeBlocking(() -> {
      rotateIfDue();
      return null;
    }).onFailure(e -> LOG.error("RA-TLS certificate rotation failed; the current one stays until it expires", e)));
  }

  /** @return true when a new certificate was put in place */
  public boolean rotateIfDue() throws QuoteSourceException {
    RaTlsIdentity current = keys.identity();
    Duration validity = Duration.between(current.certificate().getNotBefore().toInstant(), current.notAfter());
    if (clock.instant().isBefore(current.notAfter().minus(validity.dividedBy(2)))) return false;
    keys.rotate(newIdentity());
    LOG.info("RA-TLS certificate rotated; the new one is valid until {}", keys.identity().notAfter());
    return true;
  }

  /** A fresh key, its quote, the configuration claims and, where configured, GPU evidence taken with that key's nonce. */
  private RaTlsIdentity newIdentity() throws QuoteSourceException {
    return RaTlsIdentity.create(quotes, clock, RaTlsIdentity.DEFAULT_VALIDITY, gpuEvidence, config);
  }

  /**
   * What this node publishes about itself ({@code GET /v1/attestation} on a gateway):
   * {@link RaTlsIdentity#publicEvidence} plus {@code attestation}, the verifier's reading of its
   * own quote (measurements, image hash, TCB status; measurements unchecked), and for the dev TEE
   * the dev root and collateral, so that a client can run {@code cocoon attest verify} on it.
   */
  public JsonObject evidence() {
    RaTlsIdentity id = keys.identity();
    JsonObject out = id.publicEvidence(tee.label());
    byte[] quote = id.quote();
    try {
      AttestationResult self = attestations.verify(quote, collateral.collateralFor(QuoteParser.parse(quote)),
          Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(!tee.hardwareBacked()), Optional.of(RaTlsIdentity.sha512(
              RaTlsIdentity.rawEd25519(id.certificate().getPublicKey()).orElseThrow())));
      out.put("attestation", self.toJson());
    } catch (IOException | QuoteFormatException e) {
      out.put("attestation", new JsonObject().put("error", new JsonObject()
          .put("code", "collateral_unavailable").put("message", String.valueOf(e.getMessage()))));
    }
    devTee.ifPresent(d -> out.put("dev_root_pem", d.rootPem()).put("collateral", new JsonObject(d.collateralJson())));
    return out;
  }

  @Override
  public String toString() {
    return "RaTlsNode[" + tee.label() + ", certificate until " + keys.identity().notAfter() + "]";
  }
}
