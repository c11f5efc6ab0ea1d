package org.cocoonjvm.attest.dcap;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * DCAP collateral in dcap-qvl's {@code QuoteCollateralV3} JSON shape. Nothing here is verified;
 * {@link CollateralVerifier} does that.
 *
 * @param tcbInfoJson the exact signed text of the TCB Info object (never re-serialized)
 * @param tcbInfoSignature raw r‖s, 64 bytes
 * @param qeIdentityJson the exact signed text of the QE Identity object
 * @param pckCrl absent where the collateral carries {@code "pck_crl": null}
 */
public record Collateral(
    String tcbInfoJson,
    byte[] tcbInfoSignature,
    List<X509Certificate> tcbInfoIssuerChain,
    String qeIdentityJson,
    byte[] qeIdentitySignature,
    List<X509Certificate> qeIdentityIssuerChain,
    X509CRL rootCaCrl,
    Optional<X509CRL> pckCrl,
    List<X509Certificate> pckCrlIssuerChain) {

  public Collateral {
    tcbInfoIssuerChain = List.copyOf(tcbInfoIssuerChain);
    qeIdentityIssuerChain = List.copyOf(qeIdentityIssuerChain);
    pckCrlIssuerChain = List.copyOf(pckCrlIssuerChain);
  }

  /** Parses the JSON text; throws {@link IllegalArgumentException} naming the bad field. */
  public static Collateral parse(String json) {
    Map<String, Object> m = Json.obj(Json.parse(json), "collateral");
    Object pckCrl = Json.req(m, "pck_crl");
    return new Collateral(
        Json.str(m, "tcb_info"),
        hex(m, "tcb_info_signature"),
        pemChain(Json.str(m, "tcb_info_issuer_chain"), "tcb_info_issuer_chain"),
        Json.str(m, "qe_identity"),
        hex(m, "qe_identity_signature"),
        pemChain(Json.str(m, "qe_identity_issuer_chain"), "qe_identity_issuer_chain"),
        derCrl(hex(m, "root_ca_crl"), "root_ca_crl"),
        pckCrl == null ? Optional.empty() : Optional.of(derCrl(hex(m, "pck_crl"), "pck_crl")),
        pemChain(Json.str(m, "pck_crl_issuer_chain"), "pck_crl_issuer_chain"));
  }

  /** The same collateral with other TCB Info text, for tests and overrides of one field. */
  public Collateral withTcbInfoJson(String text) {
    return new Collateral(text, tcbInfoSignature, tcbInfoIssuerChain, qeIdentityJson,
        qeIdentitySignature, qeIdentityIssuerChain, rootCaCrl, pckCrl, pckCrlIssuerChain);
  }

  private static byte[] hex(Map<String, Object> m, String field) {
    try {
      return HexFormat.of().parseHex(Json.str(m, field).strip());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("collateral field " + field + " is not hex", e);
    }
  }

  /** Certificates of a PEM text, in order; throws {@link IllegalArgumentException} naming {@code field}. */
  static List<X509Certificate> pemChain(String pem, String field) {
    byte[] text = pem.getBytes(StandardCharsets.US_ASCII);
    try {
      List<X509Certificate> out = new ArrayList<>();
      for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(text))) {
        out.add((X509Certificate) c);
      }
      if (out.isEmpty()) throw new IllegalArgumentException("collateral field " + field + " holds no certificate");
      return out;
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("collateral field " + field + " is not a PEM chain", e);
    }
  }

  /** A DER CRL; throws {@link IllegalArgumentException} naming {@code field}. */
  static X509CRL derCrl(byte[] der, String field) {
    try {
      return (X509CRL) CertificateFactory.getInstance("X.509").generateCRL(new ByteArrayInputStream(der));
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("collateral field " + field + " is not a DER CRL", e);
    }
  }
}
