package org.cocoonjvm.attest.ratls;

import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.net.JdkSSLEngineOptions;
import io.vertx.core.net.KeyCertOptions;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.TCPSSLOptions;
import io.vertx.core.net.TrustOptions;
import java.util.List;
import java.util.Set;

/**
 * Vert.x 5 TLS settings for RA-TLS, matching Cocoon: TLS 1.3 only, {@code TLS_AES_128_GCM_SHA256}
 * and {@code TLS_AES_256_GCM_SHA384}, client certificates required on servers, the JDK engine
 * (it does Ed25519 certificates), and no host name verification on clients.
 */
public final class RaTlsVertx {
  public static final List<String> CIPHER_SUITES = List.of("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384");

  private RaTlsVertx() {}

  /** For HttpServerOptions, NetServerOptions and the gRPC server's HTTP server options. */
  public static <T extends NetServerOptions> T server(T options, RaTlsKeyManager keys, RaTlsTrustManager trust) {
    common(options, keys, trust);
    options.setSsl(true);
    options.setClientAuth(ClientAuth.REQUIRED);
    return options;
  }

  /** For HttpClientOptions (also what Vert.x gRPC clients take). */
  public static HttpClientOptions client(HttpClientOptions options, RaTlsKeyManager keys, RaTlsTrustManager trust) {
    common(options, keys, trust);
    options.setSsl(true);
    options.setVerifyHost(false);
    return options;
  }

  /**
   * For a client that verifies a server's RA-TLS certificate and presents none: a process outside
   * any TEE talking to an attested gateway's client port ({@link RaTlsClientProxy}).
   */
  public static NetClientOptions verifyingClient(NetClientOptions options, RaTlsTrustManager trust) {
    common(options, null, trust);
    options.setSsl(true);
    // The peer is known by the quote its certificate carries, which names no host.
    options.setHostnameVerificationAlgorithm("");
    return options;
  }

  private static void common(TCPSSLOptions o, RaTlsKeyManager keys, RaTlsTrustManager trust) {
    // The trust manager runs in the engine's delegated tasks, and a first verification is a full
    // DCAP check (milliseconds, collateral perhaps fetched): keep it off the event loop.
    o.setSslEngineOptions(new JdkSSLEngineOptions().setUseWorkerThread(true));
    if (keys != null) {
      o.setKeyCertOptions(KeyCertOptions.wrap(keys));
    }
    o.setTrustOptions(TrustOptions.wrap(trust));
    o.setEnabledSecureTransportProtocols(Set.of("TLSv1.3"));
    CIPHER_SUITES.forEach(o::addEnabledCipherSuite);
  }
}
