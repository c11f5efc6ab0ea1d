package org.cocoonjvm.attest.ratls;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HexFormat;

/**
 * The value of the non-critical {@link RaTlsIdentity#GPU_EVIDENCE_OID} extension: UTF-8 JSON
 * {@code {"format":"nvidia-spdm-1","evidence":"<base64 SPDM request ‖ response>",
 * "certificate_chain":"<PEM, device leaf first>"}}, the evidence taken with nonce
 * {@link org.cocoonjvm.attest.nvidia.GpuNonce#forTlsPublicKey} of the certificate's raw key. JSON
 * rather than DER because the producer is a script around nvtrust; the extension's DER wrapper is
 * the usual OCTET STRING. One GPU per certificate.
 */
public record GpuEvidenceExtension(byte[] evidence, byte[] certificateChainPem) {
  public static final String FORMAT = "nvidia-spdm-1";

  public GpuEvidenceExtension {
    evidence = evidence.clone();
    certificateChainPem = certificateChainPem.clone();
  }

  public byte[] encode() {
    return new JsonObject().put("format", FORMAT).put("evidence", Base64.getEncoder().encodeToString(evidence))
        .put("certificate_chain", new String(certificateChainPem, StandardCharsets.US_ASCII)).encode()
        .getBytes(StandardCharsets.UTF_8);
  }

  /** @throws IllegalArgumentException naming what is wrong */
  public static GpuEvidenceExtension decode(byte[] value) {
    JsonObject o;
    try {
      o = new JsonObject(new String(value, StandardCharsets.UTF_8));
    } catch (DecodeException e) {
      throw new IllegalArgumentException("GPU evidence extension is not a JSON object", e);
    }
    if (!FORMAT.equals(o.getValue("format"))) {
      throw new IllegalArgumentException("GPU evidence format is " + o.getValue("format") + ", expected " + FORMAT);
    }
    return fromJson(o, false);
  }

  /**
   * {@code evidence} and {@code certificate_chain} (PEM) from a JSON object: the extension itself
   * (evidence base64) or, with {@code hexAllowed}, what a {@code --gpu-evidence-command} prints
   * (evidence read as hex when it is an even number of hex digits, else base64).
   */
  static GpuEvidenceExtension fromJson(JsonObject o, boolean hexAllowed) {
    if (!(o.getValue("evidence") instanceof String ev) || ev.isEmpty()) {
      throw new IllegalArgumentException("GPU evidence JSON needs a non-empty string 'evidence'");
    }
    if (!(o.getValue("certificate_chain") instanceof String chain) || !chain.contains("-----BEGIN CERTIFICATE-----")) {
      throw new IllegalArgumentException("GPU evidence JSON needs 'certificate_chain' as PEM certificates");
    }
    byte[] evidence;
    try {
      evidence = hexAllowed && ev.length() % 2 == 0 && ev.chars().allMatch(HexFormat::isHexDigit)
          ? HexFormat.of().parseHex(ev) : Base64.getDecoder().decode(ev);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("GPU evidence 'evidence' is not " + (hexAllowed ? "hex or " : "") + "base64", e);
    }
    return new GpuEvidenceExtension(evidence, chain.getBytes(StandardCharsets.US_ASCII));
  }
}
