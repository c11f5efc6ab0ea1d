package org.cocoonjvm.attest.quote;

import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.BAD_LENGTH;
import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.BAD_QE_VENDOR;
import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.TRUNCATED;
import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.UNSUPPORTED_BODY_TYPE;
import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.UNSUPPORTED_CERT_TYPE;
import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.UNSUPPORTED_KEY_TYPE;
import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.UNSUPPORTED_TEE_TYPE;
import static org.cocoonjvm.attest.quote.QuoteFormatException.Reason.UNSUPPORTED_VERSION;

import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * Strict parser for Intel DCAP quotes: SGX v3, TDX v4 and TDX v5 (layout in
 * docs/reference/attestation.md §1).
 *
 * <p>Strict inside declared lengths, tolerant after them: every nested length must exactly fill
 * its parent, but bytes after the declared signature data are accepted and counted, because real
 * quotes carry padding there (70 zero bytes from some QGS versions, 3 KB on GCP). Anything unknown
 * is rejected rather than skipped, since a verifier that skips fields can be made to check the
 * wrong bytes.
 */
public final class QuoteParser {
  private static final byte[] INTEL_QE_VENDOR_ID =
      HexFormat.of().parseHex("939a7233f79c4ca9940a0db3957f0607");

  private QuoteParser() {}

  /** Parses a copy of {@code quote}; later changes to the array do not affect the result. */
  public static Quote parse(byte[] quote) throws QuoteFormatException {
    Reader r = new Reader(quote.clone());
    QuoteHeader header = header(r);

    // 1. Body: its type follows from the header (v3/v4) or the v5 descriptor.
    BodyType bodyType = bodyType(r, header);
    int bodyStart = r.pos;
    ReportBody body =
        bodyType == BodyType.SGX_ENCLAVE ? enclaveReport(r, "body") : tdReport(r, bodyType);
    // The attestation key signs header ‖ [descriptor] ‖ body.
    Blob signedBytes = r.slice(0, bodyStart + bodyType.size());

    // 2. Signature data: declared length must fit, and its contents must fill it exactly.
    long sigLen = r.u32("signature_data_len");
    int sigStart = r.pos;
    if (sigLen > r.remaining()) {
      throw new QuoteFormatException(TRUNCATED, "signature_data_len", sigStart - 4,
          "declares " + sigLen + " bytes but only " + r.remaining() + " follow");
    }
    Reader sig = r.sub((int) sigLen);
    SignatureData signature =
        header.version() == 3 ? signatureV3(sig) : signatureV4(sig);
    sig.expectConsumed("signature_data");

    int trailing = r.buf.length - (sigStart + (int) sigLen);
    return new Quote(header, body, signature, signedBytes, trailing);
  }

  private static QuoteHeader header(Reader r) throws QuoteFormatException {
    int version = r.u16("header.version");
    int keyType = r.u16("header.att_key_type");
    int teeType = (int) r.u32("header.tee_type");
    Blob reserved = r.bytes("header.reserved", 4);
    int vendorAt = r.pos;
    Blob vendor = r.bytes("header.qe_vendor_id", 16);
    Blob userData = r.bytes("header.user_data", 20);

    if (teeType != QuoteHeader.TEE_SGX && teeType != QuoteHeader.TEE_TDX) {
      throw new QuoteFormatException(UNSUPPORTED_TEE_TYPE, "header.tee_type", 4,
          "expected 0x00 (SGX) or 0x81 (TDX), got 0x" + Integer.toHexString(teeType));
    }
    boolean versionOk = teeType == QuoteHeader.TEE_TDX ? version == 4 || version == 5 : version == 3;
    if (!versionOk) {
      throw new QuoteFormatException(UNSUPPORTED_VERSION, "header.version", 0,
          "expected " + (teeType == QuoteHeader.TEE_TDX ? "4 or 5 for TDX" : "3 for SGX")
              + ", got " + version);
    }
    if (keyType != QuoteHeader.KEY_TYPE_ECDSA_P256) {
      throw new QuoteFormatException(UNSUPPORTED_KEY_TYPE, "header.att_key_type", 2,
          "expected 2 (ECDSA P-256), got " + keyType);
    }
    if (!vendor.contentEquals(INTEL_QE_VENDOR_ID)) {
      throw new QuoteFormatException(BAD_QE_VENDOR, "header.qe_vendor_id", vendorAt,
          "expected 939a7233f79c4ca9940a0db3957f0607, got " + vendor.hex());
    }
    return new QuoteHeader(version, keyType, teeType, reserved, vendor, userData);
  }

  private static BodyType bodyType(Reader r, QuoteHeader h) throws QuoteFormatException {
    if (h.version() == 3) return BodyType.SGX_ENCLAVE;
    if (h.version() == 4) return BodyType.TD_1_0;
    int typeAt = r.pos;
    int wire = r.u16("body.type");
    long size = r.u32("body.size");
    BodyType t = BodyType.fromWire(wire);
    // A v5 TDX quote must carry a TD body; an SGX body under tee_type 0x81 is not a TD quote.
    if (t == null || t == BodyType.SGX_ENCLAVE) {
      throw new QuoteFormatException(UNSUPPORTED_BODY_TYPE, "body.type", typeAt,
          "expected 2 (TD 1.0) or 3 (TD 1.5), got " + wire);
    }
    if (size != t.size()) {
      throw new QuoteFormatException(BAD_LENGTH, "body.size", typeAt + 2,
          "expected " + t.size() + " for body type " + wire + ", got " + size);
    }
    return t;
  }

  private static TdReportBody tdReport(Reader r, BodyType type) throws QuoteFormatException {
    r.need("body", type.size());
    Blob teeTcbSvn = r.bytes("body.tee_tcb_svn", 16);
    Blob mrSeam = r.bytes("body.mr_seam", 48);
    Blob mrSignerSeam = r.bytes("body.mr_signer_seam", 48);
    long seamAttributes = r.u64("body.seam_attributes");
    long tdAttributes = r.u64("body.td_attributes");
    long xfam = r.u64("body.xfam");
    Blob mrTd = r.bytes("body.mr_td", 48);
    Blob mrConfigId = r.bytes("body.mr_config_id", 48);
    Blob mrOwner = r.bytes("body.mr_owner", 48);
    Blob mrOwnerConfig = r.bytes("body.mr_owner_config", 48);
    List<Blob> rtmrs = List.of(
        r.bytes("body.rtmr0", 48), r.bytes("body.rtmr1", 48),
        r.bytes("body.rtmr2", 48), r.bytes("body.rtmr3", 48));
    Blob reportData = r.bytes("body.report_data", 64);
    Optional<Blob> teeTcbSvn2 = Optional.empty();
    Optional<Blob> mrServiceTd = Optional.empty();
    if (type == BodyType.TD_1_5) {
      teeTcbSvn2 = Optional.of(r.bytes("body.tee_tcb_svn2", 16));
      mrServiceTd = Optional.of(r.bytes("body.mr_servicetd", 48));
    }
    return new TdReportBody(type, teeTcbSvn, mrSeam, mrSignerSeam, seamAttributes, tdAttributes,
        xfam, mrTd, mrConfigId, mrOwner, mrOwnerConfig, rtmrs, reportData, teeTcbSvn2, mrServiceTd);
  }

  /** SGX report layout, used for SGX quote bodies and for the QE report. */
  private static EnclaveReportBody enclaveReport(Reader r, String name)
      throws QuoteFormatException {
    int start = r.pos;
    r.need(name, EnclaveReportBody.SIZE);
    Blob raw = r.slice(start, EnclaveReportBody.SIZE);
    Blob cpuSvn = r.bytes(name + ".cpu_svn", 16);
    long miscSelect = r.u32(name + ".misc_select");
    r.skip(28); // reserved1
    Blob attributes = r.bytes(name + ".attributes", 16);
    Blob mrEnclave = r.bytes(name + ".mr_enclave", 32);
    r.skip(32); // reserved2
    Blob mrSigner = r.bytes(name + ".mr_signer", 32);
    r.skip(96); // reserved3
    int isvProdId = r.u16(name + ".isv_prod_id");
    int isvSvn = r.u16(name + ".isv_svn");
    r.skip(60); // reserved4
    Blob reportData = r.bytes(name + ".report_data", 64);
    return new EnclaveReportBody(
        cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData, raw);
  }

  /** v3: the QE report fields follow the key directly, then the PCK certification data. */
  private static SignatureData signatureV3(Reader r) throws QuoteFormatException {
    Blob quoteSig = r.bytes("signature_data.quote_signature", 64);
    Blob attKey = r.bytes("signature_data.attestation_key", 64);
    return qeReportAndCerts(r, quoteSig, attKey, "signature_data");
  }

  /** v4/v5: the same fields wrapped in certification data of type 6. */
  private static SignatureData signatureV4(Reader r) throws QuoteFormatException {
    Blob quoteSig = r.bytes("signature_data.quote_signature", 64);
    Blob attKey = r.bytes("signature_data.attestation_key", 64);
    int typeAt = r.pos;
    int type = r.u16("signature_data.cert_type");
    if (type != CertificationData.TYPE_QE_REPORT) {
      throw new QuoteFormatException(UNSUPPORTED_CERT_TYPE, "signature_data.cert_type", typeAt,
          "expected 6 (QE report certification data), got " + type);
    }
    Reader inner = r.sized("signature_data.cert_size");
    SignatureData s = qeReportAndCerts(inner, quoteSig, attKey, "qe_cert_data");
    inner.expectConsumed("qe_cert_data");
    return s;
  }

  private static SignatureData qeReportAndCerts(Reader r, Blob quoteSig, Blob attKey, String name)
      throws QuoteFormatException {
    EnclaveReportBody qeReport = enclaveReport(r, name + ".qe_report");
    Blob qeSig = r.bytes(name + ".qe_report_signature", 64);
    Blob authData = r.bytes(name + ".qe_auth_data", r.u16(name + ".qe_auth_data_len"));
    int typeAt = r.pos;
    int certType = r.u16(name + ".pck_cert_type");
    // Intel's layout defines types 1..5; 6 nested in itself would be a loop, anything else unknown.
    if (certType < 1 || certType > 5) {
      throw new QuoteFormatException(UNSUPPORTED_CERT_TYPE, name + ".pck_cert_type", typeAt,
          "expected 1..5, got " + certType);
    }
    Reader certs = r.sized(name + ".pck_cert_size");
    Blob certData = certs.bytes(name + ".pck_cert_data", certs.remaining());
    return new SignatureData(quoteSig, attKey, qeReport, qeSig, authData,
        new CertificationData(certType, certData));
  }

  /** Little-endian cursor over a range of the private copy; every read is bounds-checked. */
  private static final class Reader {
    final byte[] buf;
    final int end;
    int pos;

    Reader(byte[] buf) {
      this(buf, 0, buf.length);
    }

    private Reader(byte[] buf, int pos, int end) {
      this.buf = buf;
      this.pos = pos;
      this.end = end;
    }

    int remaining() {
      return end - pos;
    }

    void need(String field, long n) throws QuoteFormatException {
      if (n > remaining()) {
        throw new QuoteFormatException(TRUNCATED, field, pos,
            "needs " + n + " bytes, " + remaining() + " available");
      }
    }

    Blob slice(int off, int len) {
      return new Blob(buf, off, len);
    }

    Blob bytes(String field, int n) throws QuoteFormatException {
      need(field, n);
      Blob b = new Blob(buf, pos, n);
      pos += n;
      return b;
    }

    void skip(int n) {
      pos += n; // callers have already checked the enclosing range with need()
    }

    int u16(String field) throws QuoteFormatException {
      need(field, 2);
      int v = (buf[pos] & 0xff) | (buf[pos + 1] & 0xff) << 8;
      pos += 2;
      return v;
    }

    long u32(String field) throws QuoteFormatException {
      need(field, 4);
      long v = (buf[pos] & 0xffL) | (buf[pos + 1] & 0xffL) << 8
          | (buf[pos + 2] & 0xffL) << 16 | (buf[pos + 3] & 0xffL) << 24;
      pos += 4;
      return v;
    }

    long u64(String field) throws QuoteFormatException {
      long lo = u32(field);
      return lo | u32(field) << 32;
    }

    /** A sub-reader over exactly {@code n} bytes; this reader moves past them. */
    Reader sub(int n) {
      Reader s = new Reader(buf, pos, pos + n);
      pos += n;
      return s;
    }

    /** Reads a u32 length and returns a sub-reader over that many bytes, which must fit. */
    Reader sized(String field) throws QuoteFormatException {
      int at = pos;
      long n = u32(field);
      if (n > remaining()) {
        throw new QuoteFormatException(BAD_LENGTH, field, at,
            "declares " + n + " bytes but its container has " + remaining() + " left");
      }
      return sub((int) n);
    }

    void expectConsumed(String field) throws QuoteFormatException {
      if (pos != end) {
        throw new QuoteFormatException(BAD_LENGTH, field, pos,
            "declared length leaves " + (end - pos) + " unparsed bytes");
      }
    }
  }
}
