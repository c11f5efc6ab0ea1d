package org.cocoonjvm.attest.policy;

import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.ADVISORY_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.DEBUG_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.DEV_TEE_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.IMAGE_HASH_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.MODEL_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.MRENCLAVE_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.MRSIGNER_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.MRTD_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.MR_CONFIG_ID_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.MR_SEAM_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.MR_SERVICETD_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.REPORT_DATA_MISMATCH;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.RESERVED_TD_ATTRIBUTES;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.ROOT_KEY_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.RTMR_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.SEPT_VE_DISABLE_REQUIRED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.TCB_EVALUATION_DATA_NUMBER_TOO_LOW;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.TCB_STATUS_NOT_ACCEPTED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.TEE_NOT_ALLOWED;
import static org.cocoonjvm.attest.policy.PolicyViolation.Reason.XFAM_NOT_ALLOWED;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.quote.EnclaveReportBody;
import org.cocoonjvm.attest.quote.TdReportBody;

/**
 * What a cryptographically verified quote must also satisfy (reference §3). Immutable; build one
 * from {@link #STRICT} or {@link #MEASUREMENTS_UNCHECKED} with the {@code with…} methods or with
 * {@link #parse(String, Policy)}. {@link #check} reports every violation, not just the first.
 *
 * @param allowedTees the quote types accepted, {@link TeeKind#INTEL_TDX} and/or {@link TeeKind#INTEL_SGX}
 *     (a development quote is TDX-shaped; {@code allowDevTee} decides on its root)
 * @param minTcbEvaluationDataNumber when present, the TCB Info and QE Identity must both be at least this
 *     new: a PCCS, or whoever is on its path, can otherwise serve older, still-current Intel-signed
 *     collateral that rates an unpatched platform UpToDate
 * @param allowedAdvisories required when a SW-hardening status is accepted: that status passes only
 *     if each of its advisories is listed
 * @param rtmrs exactly four lists, RTMR0..RTMR3
 * @param xfam TDX XFAM as a 64-bit number, 16 hex digits ({@code %016x})
 * @param mrEnclave SGX only; with {@code mrSigner}, at least one must be a list when SGX is allowed
 * @param rootKeyIds SHA-384(04‖X‖Y) of accepted chain roots; the development root is accepted by
 *     {@code allowDevTee} instead, since it is made afresh
 * @param gpu what the peer's GPU evidence extension must satisfy ({@link GpuPolicy})
 * @param config what the peer's configuration claims must say ({@link ConfigPolicy}); checked by
 *     the RA-TLS verifier, since a bare quote carries none
 */
public record Policy(
    Set<TeeKind> allowedTees,
    Set<TcbStatus> acceptedStatuses,
    OptionalInt minTcbEvaluationDataNumber,
    Optional<Set<String>> allowedAdvisories,
    boolean allowDebug,
    boolean requireSeptVeDisable,
    boolean allowReservedTdAttributes,
    boolean allowMrServiceTd,
    boolean allowDevTee,
    AllowList mrtd,
    List<AllowList> rtmrs,
    AllowList mrConfigId,
    AllowList xfam,
    AllowList mrSeam,
    AllowList imageHashes,
    AllowList mrEnclave,
    AllowList mrSigner,
    AllowList models,
    AllowList rootKeyIds,
    GpuPolicy gpu,
    ConfigPolicy config) {

  /** SHA-384(04‖X‖Y) of the Intel SGX Root CA key; Cocoon's default {@code allowed_collateral_root_hashes}. */
  public static final String INTEL_ROOT_KEY_ID =
      "46e403bd34f05a3f2817ab9badcaacc7ffc98e0f261008cd30dae936cace18d5dcf58eef31463613de1570d516200993";

  /** Reserved td_attributes bits: 1–27, 29, 32–62 (reference §1). */
  static final long RESERVED_TD_ATTRIBUTE_BITS =
      0x0FFF_FFFEL | (1L << 29) | 0x7FFF_FFFF_0000_0000L;

  private static final Set<TcbStatus> SW_HARDENING =
      EnumSet.of(TcbStatus.SW_HARDENING_NEEDED, TcbStatus.CONFIGURATION_AND_SW_HARDENING_NEEDED);
  static final Pattern MODEL_ID = Pattern.compile("[^@\\s]+@[0-9a-fA-F]{64}");

  /**
   * Production default: TDX quotes only, UpToDate only, no debug, no reserved bits, SEPT_VE_DISABLE required, no
   * service TD, no development TEE, Intel's root only, and every measurement allow-list empty, so
   * nothing passes until the operator lists the measurements it trusts. XFAM and MR_SEAM are
   * {@link AllowList#ANY}: the TDX module's identity is already held to Intel's TCB Info, and the
   * XFAM a TD may use depends on the host CPU, so pinning them is the operator's opt-in.
   */
  public static final Policy STRICT = new Policy(
      EnumSet.of(TeeKind.INTEL_TDX), EnumSet.of(TcbStatus.UP_TO_DATE), OptionalInt.empty(), Optional.empty(), false, true, false, false, false,
      AllowList.NOTHING, List.of(AllowList.NOTHING, AllowList.NOTHING, AllowList.NOTHING, AllowList.NOTHING),
      AllowList.NOTHING, AllowList.ANY, AllowList.ANY, AllowList.NOTHING, AllowList.NOTHING, AllowList.NOTHING,
      AllowList.NOTHING, AllowList.of(Set.of(INTEL_ROOT_KEY_ID)), GpuPolicy.OPTIONAL, ConfigPolicy.ANY);

  /**
   * {@link #STRICT} with every measurement and model allow-list explicitly {@link AllowList#ANY}:
   * for diagnostics ({@code cocoon attest verify}), which check the platform, not the image. Still
   * TDX only: allowing SGX over it needs an MRENCLAVE or MRSIGNER list.
   */
  public static final Policy MEASUREMENTS_UNCHECKED = STRICT.withMrtd(AllowList.ANY)
      .withRtmrs(List.of(AllowList.ANY, AllowList.ANY, AllowList.ANY, AllowList.ANY))
      .withMrConfigId(AllowList.ANY).withImageHashes(AllowList.ANY).withMrEnclave(AllowList.ANY)
      .withMrSigner(AllowList.ANY).withModels(AllowList.ANY);

  public Policy {
    allowedTees = Set.copyOf(allowedTees);
    if (allowedTees.contains(TeeKind.DEV)) {
      throw new IllegalArgumentException("policy: allowed TEEs are TDX and SGX; allow_dev_tee governs the development TEE");
    }
    // Since Flexible Launch Control anyone can launch a production enclave: without a list, "SGX" means any code at all.
    if (allowedTees.contains(TeeKind.INTEL_SGX) && mrEnclave instanceof AllowList.Any && mrSigner instanceof AllowList.Any) {
      throw new IllegalArgumentException("policy: allowing SGX needs an mrenclave or mrsigner list (not both \"any\")");
    }
    acceptedStatuses = Set.copyOf(acceptedStatuses);
    allowedAdvisories = allowedAdvisories.map(Set::copyOf);
    rtmrs = List.copyOf(rtmrs);
    if (rtmrs.size() != 4) throw new IllegalArgumentException("policy needs 4 RTMR allow-lists, got " + rtmrs.size());
    if (acceptedStatuses.stream().anyMatch(SW_HARDENING::contains) && allowedAdvisories.isEmpty()) {
      throw new IllegalArgumentException(
          "policy: accepting a SW-hardening status needs allowed_advisories (the advisories you have assessed)");
    }
  }

  /**
   * Every reason to refuse {@code e}; empty when accepted.
   *
   * @param expectedReportData the 64 bytes report_data must equal, or empty where the caller has
   *     nothing to bind (offline inspection)
   */
  public List<PolicyViolation> check(Evidence e, Optional<byte[]> expectedReportData) {
    List<PolicyViolation> out = new ArrayList<>();
    TeeKind type = e.quote().isTdx() ? TeeKind.INTEL_TDX : TeeKind.INTEL_SGX;
    if (!allowedTees.contains(type)) {
      out.add(new PolicyViolation(TEE_NOT_ALLOWED, "quote is " + type.label() + ", allowed_tee is " + labels(allowedTees)));
    }
    if (!e.tee().hardwareBacked() && !allowDevTee) {
      out.add(new PolicyViolation(DEV_TEE_NOT_ALLOWED, "quote is from the development TEE (not hardware-backed)"));
    }
    if (e.tee().hardwareBacked() && !rootKeyIds.allows(e.rootKeyId())) {
      out.add(new PolicyViolation(ROOT_KEY_NOT_ALLOWED, "root key id " + e.rootKeyId() + " not in " + rootKeyIds));
    }
    if (minTcbEvaluationDataNumber.isPresent()) {
      int min = minTcbEvaluationDataNumber.getAsInt();
      if (e.tcbInfoEvaluationDataNumber() < min) {
        out.add(new PolicyViolation(TCB_EVALUATION_DATA_NUMBER_TOO_LOW,
            "TCB Info tcbEvaluationDataNumber " + e.tcbInfoEvaluationDataNumber() + " < " + min));
      }
      if (e.qeIdentityEvaluationDataNumber() < min) {
        out.add(new PolicyViolation(TCB_EVALUATION_DATA_NUMBER_TOO_LOW,
            "QE Identity tcbEvaluationDataNumber " + e.qeIdentityEvaluationDataNumber() + " < " + min));
      }
    }
    if (!acceptedStatuses.contains(e.status())) {
      out.add(new PolicyViolation(TCB_STATUS_NOT_ACCEPTED,
          "TCB status " + e.status().jsonName() + " not in " + names(acceptedStatuses)));
    } else if (SW_HARDENING.contains(e.status())) {
      Set<String> allowed = allowedAdvisories.orElseThrow();
      for (String a : e.advisories()) {
        if (!allowed.contains(a)) {
          out.add(new PolicyViolation(ADVISORY_NOT_ALLOWED, "advisory " + a + " of " + e.status().jsonName() + " not in allowed_advisories"));
        }
      }
    }
    if (e.quote().body() instanceof TdReportBody td) {
      checkTd(td, e.imageHash().orElseThrow(), out);
    } else {
      checkSgx((EnclaveReportBody) e.quote().body(), out);
    }
    expectedReportData.ifPresent(expected -> {
      byte[] actual = e.quote().body().reportData().toByteArray();
      if (expected.length != 64 || !MessageDigest.isEqual(expected, actual)) {
        out.add(new PolicyViolation(REPORT_DATA_MISMATCH,
            "report_data " + HexFormat.of().formatHex(actual) + ", expected " + HexFormat.of().formatHex(expected)));
      }
    });
    return List.copyOf(out);
  }

  private void checkTd(TdReportBody td, String imageHash, List<PolicyViolation> out) {
    long attrs = td.tdAttributes();
    if (!allowDebug && td.debug()) out.add(new PolicyViolation(DEBUG_NOT_ALLOWED, "td_attributes.DEBUG is set"));
    if (!allowReservedTdAttributes && (attrs & RESERVED_TD_ATTRIBUTE_BITS) != 0) {
      out.add(new PolicyViolation(RESERVED_TD_ATTRIBUTES,
          String.format("td_attributes 0x%016x has reserved bits 0x%016x", attrs, attrs & RESERVED_TD_ATTRIBUTE_BITS)));
    }
    if (requireSeptVeDisable && (attrs & TdReportBody.TD_ATTR_SEPT_VE_DISABLE) == 0) {
      out.add(new PolicyViolation(SEPT_VE_DISABLE_REQUIRED, String.format("td_attributes 0x%016x lacks SEPT_VE_DISABLE (bit 28)", attrs)));
    }
    if (!allowMrServiceTd && td.mrServiceTd().isPresent() && !td.mrServiceTd().get().isAllZero()) {
      out.add(new PolicyViolation(MR_SERVICETD_NOT_ALLOWED, "mr_servicetd " + td.mrServiceTd().get().hex() + " is not zero"));
    }
    allow(mrtd, td.mrTdHex(), MRTD_NOT_ALLOWED, "MRTD", out);
    for (int i = 0; i < 4; i++) allow(rtmrs.get(i), td.rtmrHex(i), RTMR_NOT_ALLOWED, "RTMR" + i, out);
    allow(mrConfigId, td.mrConfigId().hex(), MR_CONFIG_ID_NOT_ALLOWED, "MRCONFIGID", out);
    allow(xfam, String.format("%016x", td.xfam()), XFAM_NOT_ALLOWED, "XFAM", out);
    allow(mrSeam, td.mrSeam().hex(), MR_SEAM_NOT_ALLOWED, "MR_SEAM", out);
    allow(imageHashes, imageHash, IMAGE_HASH_NOT_ALLOWED, "image hash", out);
  }

  private void checkSgx(EnclaveReportBody body, List<PolicyViolation> out) {
    if (!allowDebug && (body.attributes().byteAt(0) & 0x02) != 0) {
      out.add(new PolicyViolation(DEBUG_NOT_ALLOWED, "enclave ATTRIBUTES.DEBUG is set"));
    }
    allow(mrEnclave, body.mrEnclave().hex(), MRENCLAVE_NOT_ALLOWED, "MRENCLAVE", out);
    allow(mrSigner, body.mrSigner().hex(), MRSIGNER_NOT_ALLOWED, "MRSIGNER", out);
  }

  /** Models a worker reports ({@code name@hash}, as {@code ModelInfo.id()}), each checked against {@code models}. */
  public List<PolicyViolation> checkModels(List<String> modelIds) {
    List<PolicyViolation> out = new ArrayList<>();
    for (String id : modelIds) {
      if (!MODEL_ID.matcher(id).matches()) {
        out.add(new PolicyViolation(MODEL_NOT_ALLOWED, "model '" + id + "' is not name@<64 hex digits>"));
      } else if (!models.allows(id)) {
        out.add(new PolicyViolation(MODEL_NOT_ALLOWED, "model " + id + " not in " + models));
      }
    }
    return List.copyOf(out);
  }

  private static void allow(AllowList list, String value, PolicyViolation.Reason r, String what, List<PolicyViolation> out) {
    if (!list.allows(value)) out.add(new PolicyViolation(r, what + " " + value + " not in " + list));
  }

  private static List<String> labels(Set<TeeKind> tees) {
    return tees.stream().sorted().map(TeeKind::label).toList();
  }

  private static List<String> names(Set<TcbStatus> statuses) {
    return statuses.stream().sorted().map(TcbStatus::jsonName).toList();
  }

  public Policy withAllowedTees(Set<TeeKind> v) {
    return with(d -> d.allowedTees = v);
  }

  public Policy withAcceptedStatuses(Set<TcbStatus> s, Optional<Set<String>> advisories) {
    return with(d -> {
      d.acceptedStatuses = s;
      d.allowedAdvisories = advisories;
    });
  }

  public Policy withMinTcbEvaluationDataNumber(OptionalInt v) {
    return with(d -> d.minTcbEvaluationDataNumber = v);
  }

  public Policy withAllowDebug(boolean v) {
    return with(d -> d.allowDebug = v);
  }

  public Policy withRequireSeptVeDisable(boolean v) {
    return with(d -> d.requireSeptVeDisable = v);
  }

  public Policy withAllowReservedTdAttributes(boolean v) {
    return with(d -> d.allowReservedTdAttributes = v);
  }

  public Policy withAllowMrServiceTd(boolean v) {
    return with(d -> d.allowMrServiceTd = v);
  }

  public Policy withAllowDevTee(boolean v) {
    return with(d -> d.allowDevTee = v);
  }

  public Policy withMrtd(AllowList l) {
    return with(d -> d.mrtd = l);
  }

  public Policy withRtmrs(List<AllowList> l) {
    return with(d -> d.rtmrs = l);
  }

  public Policy withMrConfigId(AllowList l) {
    return with(d -> d.mrConfigId = l);
  }

  public Policy withXfam(AllowList l) {
    return with(d -> d.xfam = l);
  }

  public Policy withMrSeam(AllowList l) {
    return with(d -> d.mrSeam = l);
  }

  public Policy withImageHashes(AllowList l) {
    return with(d -> d.imageHashes = l);
  }

  public Policy withMrEnclave(AllowList l) {
    return with(d -> d.mrEnclave = l);
  }

  public Policy withMrSigner(AllowList l) {
    return with(d -> d.mrSigner = l);
  }

  public Policy withModels(AllowList l) {
    return with(d -> d.models = l);
  }

  public Policy withRootKeyIds(AllowList l) {
    return with(d -> d.rootKeyIds = l);
  }

  public Policy withGpu(GpuPolicy g) {
    return with(d -> d.gpu = g);
  }

  public Policy withConfig(ConfigPolicy c) {
    return with(d -> d.config = c);
  }

  /** This policy with one or more components changed; the canonical constructor re-checks it. */
  private Policy with(Consumer<Draft> change) {
    Draft d = new Draft(this);
    change.accept(d);
    return d.build();
  }

  /** Mutable copy of a policy's components, so each {@code with…} names only what it changes. */
  private static final class Draft {
    Set<TeeKind> allowedTees;
    Set<TcbStatus> acceptedStatuses;
    OptionalInt minTcbEvaluationDataNumber;
    Optional<Set<String>> allowedAdvisories;
    boolean allowDebug;
    boolean requireSeptVeDisable;
    boolean allowReservedTdAttributes;
    boolean allowMrServiceTd;
    boolean allowDevTee;
    AllowList mrtd;
    List<AllowList> rtmrs;
    AllowList mrConfigId;
    AllowList xfam;
    AllowList mrSeam;
    AllowList imageHashes;
    AllowList mrEnclave;
    AllowList mrSigner;
    AllowList models;
    AllowList rootKeyIds;
    GpuPolicy gpu;
    ConfigPolicy config;

    Draft(Policy p) {
      allowedTees = p.allowedTees;
      acceptedStatuses = p.acceptedStatuses;
      minTcbEvaluationDataNumber = p.minTcbEvaluationDataNumber;
      allowedAdvisories = p.allowedAdvisories;
      allowDebug = p.allowDebug;
      requireSeptVeDisable = p.requireSeptVeDisable;
      allowReservedTdAttributes = p.allowReservedTdAttributes;
      allowMrServiceTd = p.allowMrServiceTd;
      allowDevTee = p.allowDevTee;
      mrtd = p.mrtd;
      rtmrs = p.rtmrs;
      mrConfigId = p.mrConfigId;
      xfam = p.xfam;
      mrSeam = p.mrSeam;
      imageHashes = p.imageHashes;
      mrEnclave = p.mrEnclave;
      mrSigner = p.mrSigner;
      models = p.models;
      rootKeyIds = p.rootKeyIds;
      gpu = p.gpu;
      config = p.config;
    }

    Policy build() {
      return new Policy(allowedTees, acceptedStatuses, minTcbEvaluationDataNumber, allowedAdvisories, allowDebug, requireSeptVeDisable,
          allowReservedTdAttributes, allowMrServiceTd, allowDevTee, mrtd, rtmrs, mrConfigId, xfam, mrSeam,
          imageHashes, mrEnclave, mrSigner, models, rootKeyIds, gpu, config);
    }
  }

  /**
   * Reads policy JSON (shape in attest-verifier/README.md). Keys present replace {@code base}'s
   * values; absent keys keep them. Unknown keys, unknown statuses and malformed hex are rejected
   * with {@link IllegalArgumentException}, so a typo cannot silently widen the policy.
   */
  public static Policy parse(String json, Policy base) {
    return PolicyJson.parse(json, base);
  }
}
