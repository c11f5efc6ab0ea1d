package org.cocoonjvm.attest.ratls;

import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * Presents this node's current {@link RaTlsIdentity} on both sides of a handshake. {@link #rotate}
 * swaps in a new identity (certificates last a day) without rebuilding TLS contexts: JSSE asks the
 * key manager on every handshake.
 */
public final class RaTlsKeyManager extends X509ExtendedKeyManager {
  static final String ALIAS = "ra-tls";

  private final AtomicReference<RaTlsIdentity> current;

  public RaTlsKeyManager(RaTlsIdentity identity) {
    this.current = new AtomicReference<>(identity);
  }

  public void rotate(RaTlsIdentity next) {
    current.set(next);
  }

  public RaTlsIdentity identity() {
    return current.get();
  }

  /** JSSE asks per signature scheme with that scheme's key algorithm; answer only for ours. */
  private String aliasFor(String keyType) {
    String alg = current.get().certificate().getPublicKey().getAlgorithm();
    boolean ours = keyType != null && (keyType.equalsIgnoreCase(alg)
        || (keyType.equalsIgnoreCase("EdDSA") && alg.equalsIgnoreCase("Ed25519"))
        || (keyType.equalsIgnoreCase("Ed25519") && alg.equalsIgnoreCase("EdDSA")));
    return ours ? ALIAS : null;
  }

  private String aliasFor(String[] keyTypes) {
    if (keyTypes == null) return null;
    for (String k : keyTypes) {
      if (aliasFor(k) != null) return ALIAS;
    }
    return null;
  }

  @Override
  public String[] getClientAliases(String keyType, Principal[] issuers) {
    return aliasFor(keyType) == null ? null : new String[] {ALIAS};
  }

  @Override
  public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
    return aliasFor(keyTypes);
  }

  @Override
  public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
    return aliasFor(keyTypes);
  }

  @Override
  public String[] getServerAliases(String keyType, Principal[] issuers) {
    return aliasFor(keyType) == null ? null : new String[] {ALIAS};
  }

  @Override
  public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
    return aliasFor(keyType);
  }

  @Override
  public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
    return aliasFor(keyType);
  }

  @Override
  public X509Certificate[] getCertificateChain(String alias) {
    return ALIAS.equals(alias) ? new X509Certificate[] {current.get().certificate()} : null;
  }

  @Override
  public PrivateKey getPrivateKey(String alias) {
    return ALIAS.equals(alias) ? current.get().privateKey() : null;
  }
}
