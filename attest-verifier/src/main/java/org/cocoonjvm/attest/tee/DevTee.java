package org.cocoonjvm.attest.tee;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.quote.TdReportBody;

/**
 * A development TEE: TDX v4 quotes made in software, in exactly the real format (header, TD
 * report, attestation key signature, QE report signed by a PCK key, QE binding, PEM PCK chain),
 * plus matching collateral (TCB Info, QE Identity, CRLs) signed under a development root. The
 * same DCAP verifier code checks them once that root is pinned ({@code TrustAnchors.withDevRoots}),
 * and a policy accepts them only with {@code allow_dev_tee}. Nothing here is hardware-backed:
 * anyone holding the seed can make any quote.
 *
 * <p>Immutable; the attestation key is fresh per instance, the PKI keys follow the seed.
 */
public final class DevTee implements QuoteSource {
  /** FMSPC of dev PCK certificates and TCB Info; chosen not to collide with a real platform's. */
  public static final String FMSPC = "c0c0a0000000";
  private static final byte[] PCE_ID = {0, 0};
  private static final byte[] QE_VENDOR_ID = HexFormat.of().parseHex("939a7233f79c4ca9940a0db3957f0607");
  /** The dev QE's identity: MRSIGNER, ISVPRODID 2 (TD QE), ISVSVN 4, ATTRIBUTES 0x11. */
  private static final byte[] QE_MRSIGNER = sha256("cocoon-jvm dev TD QE signer");
  private static final int QE_ISVPRODID = 2;
  private static final int QE_ISVSVN = 4;
  private static final byte[] QE_ATTRIBUTES = HexFormat.of().parseHex("11000000000000000000000000000000");
  /** PCK TCB: sixteen SGX component SVNs then PCESVN. */
  private static final int[] PCK_TCB = {3, 3, 2, 2, 2, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 11};
  /** TEE_TCB_SVN: module ISVSVN 3, module major version 1 (identity TDX_01). */
  private static final byte[] TEE_TCB_SVN = {3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  private static final Duration PKI_VALIDITY = Duration.ofDays(3650);
  private static final Duration COLLATERAL_VALIDITY = Duration.ofDays(30);

  /**
   * What the dev TD reports about itself. Measurements are 48 bytes each.
   *
   * @param tdAttributes defaults to SEPT_VE_DISABLE only, as a production TD
   */
  public record Measurements(
      byte[] mrTd, byte[] mrConfigId, byte[] mrOwner, byte[] mrOwnerConfig, List<byte[]> rtmrs, long tdAttributes, long xfam) {
    public Measurements {
      for (byte[] m : List.of(mrTd, mrConfigId, mrOwner, mrOwnerConfig)) check(m);
      rtmrs = rtmrs.stream().map(byte[]::clone).toList();
      if (rtmrs.size() != 4) throw new IllegalArgumentException("4 RTMRs, got " + rtmrs.size());
      rtmrs.forEach(Measurements::check);
      mrTd = mrTd.clone();
      mrConfigId = mrConfigId.clone();
      mrOwner = mrOwner.clone();
      mrOwnerConfig = mrOwnerConfig.clone();
    }

    private static void check(byte[] m) {
      if (m.length != 48) throw new IllegalArgumentException("measurements are 48 bytes, got " + m.length);
    }

    /** Fixed, recognizable values: SHA-384 of labels such as {@code cocoon-jvm dev mrtd}; zero MRCONFIGID/MROWNER*. */
    public static Measurements defaults() {
      List<byte[]> rtmrs = new ArrayList<>();
      for (int i = 0; i < 4; i++) rtmrs.add(sha384("cocoon-jvm dev rtmr" + i));
      return new Measurements(sha384("cocoon-jvm dev mrtd"), new byte[48], new byte[48], new byte[48], rtmrs,
          TdReportBody.TD_ATTR_SEPT_VE_DISABLE, 0x602e7L);
    }

    public Measurements withMrTd(byte[] v) {
      return new Measurements(v, mrConfigId, mrOwner, mrOwnerConfig, rtmrs, tdAttributes, xfam);
    }

    public Measurements withRtmr(int index, byte[] v) {
      List<byte[]> r = new ArrayList<>(rtmrs);
      r.set(index, v);
      return new Measurements(mrTd, mrConfigId, mrOwner, mrOwnerConfig, r, tdAttributes, xfam);
    }

    public Measurements withTdAttributes(long v) {
      return new Measurements(mrTd, mrConfigId, mrOwner, mrOwnerConfig, rtmrs, v, xfam);
    }

    public String mrTdHex() {
      return HexFormat.of().formatHex(mrTd);
    }
  }

  private final DevPki pki;
  private final KeyPair attestationKey;
  private final Measurements measurements;
  private final Instant collateralIssued;
  private final TcbStatus status;
  private final List<String> advisories;
  private final Collateral collateral;
  private final String collateralJson;

  private DevTee(DevPki pki, KeyPair attestationKey, Measurements m, Instant issued, TcbStatus status, List<String> advisories) {
    this.pki = pki;
    this.attestationKey = attestationKey;
    this.measurements = m;
    this.collateralIssued = issued;
    this.status = status;
    this.advisories = List.copyOf(advisories);
    this.collateralJson = buildCollateralJson();
    this.collateral = Collateral.parse(collateralJson);
  }

  /** A dev TEE with a fresh random root, default measurements, UpToDate collateral issued now. */
  public static DevTee generate(Clock clock) {
    byte[] seed = new byte[32];
    new SecureRandom().nextBytes(seed);
    return fromSeed(seed, clock);
  }

  /**
   * A dev TEE whose root, CA and signing keys follow {@code seed}: processes sharing a seed verify
   * each other's dev quotes (the RA-TLS peer's collateral is then made locally).
   */
  public static DevTee fromSeed(byte[] seed, Clock clock) {
    Instant now = clock.instant().truncatedTo(ChronoUnit.SECONDS);
    // Start a day back so verifiers whose clocks lag a little still accept the PKI.
    Instant from = now.minus(Duration.ofDays(1));
    DevPki pki = new DevPki(seed.clone(), HexFormat.of().parseHex(FMSPC), PCE_ID, PCK_TCB, from,
        now.plus(PKI_VALIDITY), now.plus(COLLATERAL_VALIDITY));
    return new DevTee(pki, newAttestationKey(), Measurements.defaults(), from, TcbStatus.UP_TO_DATE, List.of());
  }

  public DevTee withMeasurements(Measurements m) {
    return new DevTee(pki, attestationKey, Objects.requireNonNull(m), collateralIssued, status, advisories);
  }

  /** The same TEE whose collateral gives its one platform TCB level this status and these advisories. */
  public DevTee withTcbStatus(TcbStatus s, List<String> adv) {
    return new DevTee(pki, attestationKey, measurements, collateralIssued, s, adv);
  }

  public Measurements measurements() {
    return measurements;
  }

  /** The development root to pin; its key is what makes a quote "dev". */
  public X509Certificate root() {
    return pki.root;
  }

  public String rootPem() {
    return DevPki.pem(List.of(pki.root));
  }

  public Collateral collateral() {
    return collateral;
  }

  /** The collateral in dcap-qvl QuoteCollateralV3 JSON, as {@code cocoon attest verify --collateral} reads it. */
  public String collateralJson() {
    return collateralJson;
  }

  @Override
  public String describe() {
    return "dev TEE (not hardware-backed), root " + pki.root.getSubjectX500Principal().getName();
  }

  @Override
  public byte[] quote(byte[] reportData) throws QuoteSourceException {
    if (reportData == null || reportData.length != REPORT_DATA_SIZE) {
      throw new QuoteSourceException(QuoteSourceException.Reason.BAD_REPORT_DATA,
          "report_data must be exactly 64 bytes, got " + (reportData == null ? "null" : reportData.length));
    }
    try {
      byte[] signed = concat(header(), tdReport(reportData));
      byte[] attKeyRaw = DevPki.rawKey(attestationKey.getPublic());
      byte[] authData = sha256("cocoon-jvm dev qe auth data");
      byte[] qeReport = qeReport(concat(sha256(concat(attKeyRaw, authData)), new byte[32]));
      byte[] pem = concat(DevPki.pem(List.of(pki.pck, pki.pckCa, pki.root)).getBytes(StandardCharsets.US_ASCII), new byte[1]);

      ByteArrayOutputStream qeCert = new ByteArrayOutputStream();
      qeCert.writeBytes(qeReport);
      qeCert.writeBytes(sign(pki.pckKey.getPrivate(), qeReport));
      qeCert.writeBytes(le16(authData.length));
      qeCert.writeBytes(authData);
      qeCert.writeBytes(le16(5));
      qeCert.writeBytes(le32(pem.length));
      qeCert.writeBytes(pem);
      byte[] qeCertData = qeCert.toByteArray();

      ByteArrayOutputStream sig = new ByteArrayOutputStream();
      sig.writeBytes(sign(attestationKey.getPrivate(), signed));
      sig.writeBytes(attKeyRaw);
      sig.writeBytes(le16(6));
      sig.writeBytes(le32(qeCertData.length));
      sig.writeBytes(qeCertData);
      byte[] sigData = sig.toByteArray();
      return concat(signed, le32(sigData.length), sigData);
    } catch (GeneralSecurityException e) {
      throw new QuoteSourceException(QuoteSourceException.Reason.IO, "dev quote signing failed: " + e.getMessage(), e);
    }
  }

  private static byte[] header() {
    ByteBuffer b = ByteBuffer.allocate(48).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort((short) 4).putShort((short) 2).putInt(0x81).putInt(0).put(QE_VENDOR_ID);
    b.put(Arrays.copyOf(sha256("cocoon-jvm dev QE id"), 16)).putInt(0);
    return b.array();
  }

  private byte[] tdReport(byte[] reportData) {
    Measurements m = measurements;
    ByteBuffer b = ByteBuffer.allocate(584).order(ByteOrder.LITTLE_ENDIAN);
    b.put(TEE_TCB_SVN).put(sha384("cocoon-jvm dev mrseam")).put(new byte[48]); // MRSIGNERSEAM zero: "Intel's" module
    b.putLong(0).putLong(m.tdAttributes()).putLong(m.xfam());
    b.put(m.mrTd()).put(m.mrConfigId()).put(m.mrOwner()).put(m.mrOwnerConfig());
    m.rtmrs().forEach(b::put);
    b.put(reportData);
    return b.array();
  }

  private static byte[] qeReport(byte[] reportData) {
    ByteBuffer b = ByteBuffer.allocate(384).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[16]).putInt(0).put(new byte[28]).put(QE_ATTRIBUTES);
    b.put(sha256("cocoon-jvm dev TD QE")).put(new byte[32]).put(QE_MRSIGNER).put(new byte[96]);
    b.putShort((short) QE_ISVPRODID).putShort((short) QE_ISVSVN).put(new byte[60]).put(reportData);
    return b.array();
  }

  private String buildCollateralJson() {
    HexFormat hex = HexFormat.of();
    Instant next = collateralIssued.plus(COLLATERAL_VALIDITY).plus(Duration.ofDays(1));
    if (next.isAfter(pki.rootCrl.getNextUpdate().toInstant())) next = pki.rootCrl.getNextUpdate().toInstant();
    JsonArray sgx = new JsonArray();
    for (int i = 0; i < 16; i++) sgx.add(new JsonObject().put("svn", PCK_TCB[i]));
    JsonArray tdx = new JsonArray();
    for (byte s : TEE_TCB_SVN) tdx.add(new JsonObject().put("svn", s & 0xff));
    JsonObject level = new JsonObject()
        .put("tcb", new JsonObject().put("sgxtcbcomponents", sgx).put("pcesvn", PCK_TCB[16]).put("tdxtcbcomponents", tdx))
        .put("tcbDate", collateralIssued.toString()).put("tcbStatus", status.jsonName());
    if (!advisories.isEmpty()) level.put("advisoryIDs", new JsonArray(advisories));
    JsonObject module = new JsonObject().put("mrsigner", hex.formatHex(new byte[48]))
        .put("attributes", "0000000000000000").put("attributesMask", "ffffffffffffffff");
    JsonObject moduleIdentity = module.copy().put("id", "TDX_01").put("tcbLevels", new JsonArray().add(
        new JsonObject().put("tcb", new JsonObject().put("isvsvn", TEE_TCB_SVN[0] & 0xff))
            .put("tcbDate", collateralIssued.toString()).put("tcbStatus", "UpToDate")));
    String tcbInfo = new JsonObject().put("id", "TDX").put("version", 3)
        .put("issueDate", collateralIssued.toString()).put("nextUpdate", next.toString())
        .put("fmspc", FMSPC).put("pceId", hex.formatHex(PCE_ID)).put("tcbType", 0).put("tcbEvaluationDataNumber", 1)
        .put("tdxModule", module).put("tdxModuleIdentities", new JsonArray().add(moduleIdentity))
        .put("tcbLevels", new JsonArray().add(level)).encode();
    String qeIdentity = new JsonObject().put("id", "TD_QE").put("version", 2)
        .put("issueDate", collateralIssued.toString()).put("nextUpdate", next.toString()).put("tcbEvaluationDataNumber", 1)
        .put("miscselect", "00000000").put("miscselectMask", "ffffffff")
        .put("attributes", hex.formatHex(QE_ATTRIBUTES)).put("attributesMask", "fbffffffffffffff0000000000000000")
        .put("mrsigner", hex.formatHex(QE_MRSIGNER)).put("isvprodid", QE_ISVPRODID)
        .put("tcbLevels", new JsonArray().add(new JsonObject().put("tcb", new JsonObject().put("isvsvn", QE_ISVSVN))
            .put("tcbDate", collateralIssued.toString()).put("tcbStatus", "UpToDate")))
        .encode();
    String signingChain = DevPki.pem(List.of(pki.tcbSigner, pki.root));
    try {
      return new JsonObject()
          .put("pck_crl_issuer_chain", DevPki.pem(List.of(pki.pckCa, pki.root)))
          .put("root_ca_crl", hex.formatHex(pki.rootCrl.getEncoded()))
          .put("pck_crl", hex.formatHex(pki.pckCrl.getEncoded()))
          .put("tcb_info_issuer_chain", signingChain)
          .put("tcb_info", tcbInfo)
          .put("tcb_info_signature", hex.formatHex(sign(pki.tcbSignerKey.getPrivate(), tcbInfo.getBytes(StandardCharsets.UTF_8))))
          .put("qe_identity_issuer_chain", signingChain)
          .put("qe_identity", qeIdentity)
          .put("qe_identity_signature", hex.formatHex(sign(pki.tcbSignerKey.getPrivate(), qeIdentity.getBytes(StandardCharsets.UTF_8))))
          .encodePrettily();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign dev collateral", e);
    }
  }

  private static KeyPair newAttestationKey() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
      return g.generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("P-256 unavailable", e);
    }
  }

  private static byte[] sign(PrivateKey key, byte[] data) throws GeneralSecurityException {
    Signature s = Signature.getInstance("SHA256withECDSAinP1363Format");
    s.initSign(key);
    s.update(data);
    return s.sign();
  }

  private static byte[] le16(int v) {
    return new byte[] {(byte) v, (byte) (v >>> 8)};
  }

  private static byte[] le32(int v) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    for (byte[] p : parts) o.writeBytes(p);
    return o.toByteArray();
  }

  static byte[] sha256(String label) {
    return sha256(label.getBytes(StandardCharsets.UTF_8));
  }

  private static byte[] sha256(byte[] data) {
    return digest("SHA-256", data);
  }

  static byte[] sha384(String label) {
    return digest("SHA-384", label.getBytes(StandardCharsets.UTF_8));
  }

  private static byte[] digest(String alg, byte[] data) {
    try {
      return MessageDigest.getInstance(alg).digest(data);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(alg + " unavailable", e);
    }
  }
}
