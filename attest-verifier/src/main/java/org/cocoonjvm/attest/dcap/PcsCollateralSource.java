package org.cocoonjvm.attest.dcap;

import static org.cocoonjvm.attest.dcap.CollateralFetchException.Reason.HTTP_STATUS;
import static org.cocoonjvm.attest.dcap.CollateralFetchException.Reason.MALFORMED;
import static org.cocoonjvm.attest.dcap.CollateralFetchException.Reason.NOT_FOUND;
import static org.cocoonjvm.attest.dcap.CollateralFetchException.Reason.UNAVAILABLE;

import java.io.IOException;
import java.net.URI;
import java.net.URLDecoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Collateral from Intel PCS v4 or a PCCS (same paths under its own base URL), reference §2.2:
 * TCB Info ({@code TCB-Info-Issuer-Chain}), QE Identity ({@code SGX-Enclave-Identity-Issuer-Chain}),
 * PCK CRL in DER ({@code SGX-PCK-CRL-Issuer-Chain}) and the root CA CRL. Issuer chains arrive as
 * URL-encoded PEM headers; TCB Info and QE Identity keep the exact inner-object text they were
 * signed over. One fetch is four sequential GETs on the caller's thread.
 */
public final class PcsCollateralSource implements CollateralSource {
  public static final URI INTEL_PCS = URI.create("https://api.trustedservices.intel.com");
  public static final URI INTEL_ROOT_CRL =
      URI.create("https://certificates.trustedservices.intel.com/IntelSGXRootCA.der");

  private final HttpClient http;
  private final URI base;
  private final URI rootCrl;
  private final Duration timeout;

  private PcsCollateralSource(HttpClient http, URI base, URI rootCrl, Duration timeout) {
    this.http = Objects.requireNonNull(http, "http");
    this.base = Objects.requireNonNull(base, "base");
    this.rootCrl = Objects.requireNonNull(rootCrl, "rootCrl");
    this.timeout = Objects.requireNonNull(timeout, "timeout");
  }

  /** Intel's PCS, with the root CA CRL from Intel's certificate site. */
  public static PcsCollateralSource intelPcs(HttpClient http, Duration timeout) {
    return new PcsCollateralSource(http, INTEL_PCS, INTEL_ROOT_CRL, timeout);
  }

  /** A PCCS at {@code base}; it also serves the root CA CRL ({@code /sgx/certification/v4/rootcacrl}). */
  public static PcsCollateralSource pccs(HttpClient http, URI base, Duration timeout) {
    return new PcsCollateralSource(http, base, resolve(base, "/sgx/certification/v4/rootcacrl"), timeout);
  }

  /** Any PCS-shaped server at {@code base}, with the root CA CRL at {@code rootCrl}. */
  public static PcsCollateralSource create(HttpClient http, URI base, URI rootCrl, Duration timeout) {
    return new PcsCollateralSource(http, base, rootCrl, timeout);
  }

  @Override
  public Collateral fetch(CollateralKey key) throws CollateralFetchException {
    String tee = key.tee().path();
    HttpResponse<byte[]> tcb = get(resolve(base, "/" + tee + "/certification/v4/tcb?fmspc=" + key.fmspc()));
    HttpResponse<byte[]> qe = get(resolve(base, "/" + tee + "/certification/v4/qe/identity"));
    HttpResponse<byte[]> pck = get(resolve(base,
        "/sgx/certification/v4/pckcrl?ca=" + key.ca().query() + "&encoding=der"));
    HttpResponse<byte[]> root = get(rootCrl);
    try {
      Signed tcbInfo = signed(tcb, "tcbInfo");
      Signed qeIdentity = signed(qe, "enclaveIdentity");
      return new Collateral(
          tcbInfo.json, tcbInfo.signature, chain(tcb, "TCB-Info-Issuer-Chain"),
          qeIdentity.json, qeIdentity.signature, chain(qe, "SGX-Enclave-Identity-Issuer-Chain"),
          crl(root, "root CA CRL"), Optional.of(crl(pck, "PCK CRL")),
          chain(pck, "SGX-PCK-CRL-Issuer-Chain"));
    } catch (IllegalArgumentException e) {
      throw new CollateralFetchException(MALFORMED, e.getMessage() + " (" + key + ")", e);
    }
  }

  private HttpResponse<byte[]> get(URI uri) throws CollateralFetchException {
    HttpRequest request = HttpRequest.newBuilder(uri).timeout(timeout).GET().build();
    HttpResponse<byte[]> response;
    try {
      response = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException e) {
      throw new CollateralFetchException(UNAVAILABLE, "GET " + uri + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CollateralFetchException(UNAVAILABLE, "GET " + uri + " interrupted", e);
    }
    if (response.statusCode() == 404) {
      throw new CollateralFetchException(NOT_FOUND, "GET " + uri + ": 404", null);
    }
    if (response.statusCode() != 200) {
      throw new CollateralFetchException(HTTP_STATUS, "GET " + uri + ": " + response.statusCode(), null);
    }
    return response;
  }

  private record Signed(String json, byte[] signature) {}

  private static Signed signed(HttpResponse<byte[]> r, String member) {
    String body = new String(r.body(), StandardCharsets.UTF_8);
    Map<String, Object> m = Json.obj(Json.parse(body), member + " response");
    try {
      return new Signed(RawJsonMember.of(body, member), HexFormat.of().parseHex(Json.str(m, "signature")));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(member + " response from " + r.uri() + ": " + e.getMessage(), e);
    }
  }

  private static List<X509Certificate> chain(HttpResponse<byte[]> r, String header) {
    String encoded = r.headers().firstValue(header).orElseThrow(() ->
        new IllegalArgumentException("no " + header + " header from " + r.uri()));
    return Collateral.pemChain(URLDecoder.decode(encoded, StandardCharsets.UTF_8), header);
  }

  /** DER as PCS sends it; a PCCS may send the same CRL hex-encoded. */
  private static X509CRL crl(HttpResponse<byte[]> r, String what) {
    byte[] body = r.body();
    if (body.length > 0 && body[0] != 0x30) {
      body = HexFormat.of().parseHex(new String(body, StandardCharsets.US_ASCII).strip());
    }
    return Collateral.derCrl(body, what + " from " + r.uri());
  }

  private static URI resolve(URI base, String pathAndQuery) {
    String b = base.toString();
    return URI.create((b.endsWith("/") ? b.substring(0, b.length() - 1) : b) + pathAndQuery);
  }
}
