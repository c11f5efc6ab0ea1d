package org.cocoonjvm.attest.policy;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import org.cocoonjvm.attest.dcap.TcbStatus;

/**
 * Policy JSON, read onto a base {@link Policy} ({@link Policy#parse}). Apart from the policy's
 * rules because the file format has its own: every key known, every value of the right shape and
 * length, or a specific error, so that a typo in an operator's file cannot silently widen what
 * {@link Policy#check} accepts.
 */
final class PolicyJson {
  private PolicyJson() {
  }

  static Policy parse(String json, Policy base) {
    JsonObject o;
    try {
      o = new JsonObject(json);
    } catch (DecodeException e) {
      throw new IllegalArgumentException("policy: not a JSON object: " + e.getMessage(), e);
    }
    for (String k : o.fieldNames()) {
      if (!KEYS.contains(k)) throw new IllegalArgumentException("policy: unknown key '" + k + "' (known: " + KEYS + ")");
    }
    Policy p = base;
    if (o.containsKey("accepted_statuses") || o.containsKey("allowed_advisories")) {
      Set<TcbStatus> statuses = p.acceptedStatuses();
      if (o.containsKey("accepted_statuses")) {
        statuses = EnumSet.noneOf(TcbStatus.class);
        for (String name : strings(o, "accepted_statuses")) statuses.add(status(name));
      }
      Optional<Set<String>> advisories = o.containsKey("allowed_advisories")
          ? Optional.of(new LinkedHashSet<>(strings(o, "allowed_advisories"))) : p.allowedAdvisories();
      p = p.withAcceptedStatuses(statuses, advisories);
    }
    if (o.containsKey("min_tcb_evaluation_data_number")) {
      if (!(o.getValue("min_tcb_evaluation_data_number") instanceof Integer min) || min < 0) {
        throw new IllegalArgumentException("policy: min_tcb_evaluation_data_number must be a non-negative integer");
      }
      p = p.withMinTcbEvaluationDataNumber(OptionalInt.of(min));
    }
    p = p.withAllowDebug(bool(o, "allow_debug", p.allowDebug()))
        .withRequireSeptVeDisable(bool(o, "require_sept_ve_disable", p.requireSeptVeDisable()))
        .withAllowReservedTdAttributes(bool(o, "allow_reserved_td_attributes", p.allowReservedTdAttributes()))
        .withAllowMrServiceTd(bool(o, "allow_mr_servicetd", p.allowMrServiceTd()))
        .withAllowDevTee(bool(o, "allow_dev_tee", p.allowDevTee()))
        .withMrtd(hexList(o, "mrtd", 48, p.mrtd()))
        .withRtmrs(List.of(hexList(o, "rtmr0", 48, p.rtmrs().get(0)), hexList(o, "rtmr1", 48, p.rtmrs().get(1)),
            hexList(o, "rtmr2", 48, p.rtmrs().get(2)), hexList(o, "rtmr3", 48, p.rtmrs().get(3))))
        .withMrConfigId(hexList(o, "mr_config_id", 48, p.mrConfigId()))
        .withXfam(hexList(o, "xfam", 8, p.xfam()))
        .withMrSeam(hexList(o, "mr_seam", 48, p.mrSeam()))
        .withImageHashes(hexList(o, "image_hashes", 32, p.imageHashes()))
        .withMrEnclave(hexList(o, "mrenclave", 32, p.mrEnclave()))
        .withMrSigner(hexList(o, "mrsigner", 32, p.mrSigner()))
        .withRootKeyIds(hexList(o, "collateral_root_key_ids", 48, p.rootKeyIds()));
    // After the SGX lists: allowing SGX is refused unless one of them is set.
    if (o.containsKey("allowed_tee")) {
      Set<TeeKind> tees = EnumSet.noneOf(TeeKind.class);
      for (String name : strings(o, "allowed_tee")) tees.add(tee(name));
      p = p.withAllowedTees(tees);
    }
    if (o.containsKey("models")) {
      AllowList models = anyOr(o, "models");
      if (models == null) {
        List<String> ids = strings(o, "models");
        for (String id : ids) {
          if (!Policy.MODEL_ID.matcher(id).matches()) throw new IllegalArgumentException("policy: models entry '" + id + "' is not name@<64 hex digits>");
        }
        models = AllowList.of(new LinkedHashSet<>(ids));
      }
      p = p.withModels(models);
    }
    if (o.containsKey("gpu")) p = p.withGpu(GpuPolicy.parse(o.getValue("gpu"), p.gpu()));
    if (o.containsKey("config")) p = p.withConfig(ConfigPolicy.parse(o.getValue("config")));
    return p;
  }

  private static final Set<String> KEYS = Set.of("allowed_tee", "accepted_statuses", "min_tcb_evaluation_data_number",
      "allowed_advisories", "allow_debug", "require_sept_ve_disable", "allow_reserved_td_attributes", "allow_mr_servicetd",
      "allow_dev_tee", "mrtd",
      "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id", "xfam", "mr_seam", "image_hashes", "mrenclave", "mrsigner",
      "models", "collateral_root_key_ids", "gpu", "config");

  private static TeeKind tee(String name) {
    for (TeeKind t : List.of(TeeKind.INTEL_TDX, TeeKind.INTEL_SGX)) if (t.label().equals(name)) return t;
    throw new IllegalArgumentException("policy: allowed_tee entries are \"TDX\" or \"SGX\", got '" + name + "'");
  }

  private static TcbStatus status(String name) {
    for (TcbStatus s : TcbStatus.values()) if (s.jsonName().equals(name)) return s;
    throw new IllegalArgumentException("policy: unknown TCB status '" + name + "'");
  }

  private static boolean bool(JsonObject o, String key, boolean dflt) {
    if (!o.containsKey(key)) return dflt;
    if (!(o.getValue(key) instanceof Boolean b)) throw new IllegalArgumentException("policy: " + key + " must be true or false");
    return b;
  }

  private static List<String> strings(JsonObject o, String key) {
    return strings(o, key, key);
  }

  /** The array of strings at {@code key}; errors name it as {@code shownAs}, its path in the policy. */
  static List<String> strings(JsonObject o, String key, String shownAs) {
    if (!(o.getValue(key) instanceof JsonArray a)) throw new IllegalArgumentException("policy: " + shownAs + " must be an array of strings");
    List<String> out = new ArrayList<>();
    for (Object v : a) {
      if (!(v instanceof String s)) throw new IllegalArgumentException("policy: " + shownAs + " must be an array of strings, found " + v);
      out.add(s);
    }
    return out;
  }

  /** {@link AllowList#ANY} for the string "any", null for an array. */
  private static AllowList anyOr(JsonObject o, String key) {
    Object v = o.getValue(key);
    if ("any".equals(v)) return AllowList.ANY;
    if (v instanceof JsonArray) return null;
    throw new IllegalArgumentException("policy: " + key + " must be an array or \"any\"");
  }

  private static AllowList hexList(JsonObject o, String key, int bytes, AllowList dflt) {
    if (!o.containsKey(key)) return dflt;
    AllowList any = anyOr(o, key);
    if (any != null) return any;
    Set<String> values = new LinkedHashSet<>();
    for (String s : strings(o, key)) {
      String hex = s.startsWith("0x") || s.startsWith("0X") ? s.substring(2) : s;
      if (hex.length() != 2 * bytes || !hex.chars().allMatch(HexFormat::isHexDigit)) {
        throw new IllegalArgumentException("policy: " + key + " entries must be " + bytes + " bytes of hex, got '" + s + "'");
      }
      values.add(hex);
    }
    return AllowList.of(values);
  }
}
