package org.cocoonjvm.attest.dcap;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * TCB Info v3 (SGX or TDX), read from the signed JSON text. Hex fields are kept as bytes.
 *
 * @param tcbEvaluationDataNumber Intel's counter of TCB evaluations (TCB recoveries); higher is newer
 * @param tdxModule TDX only: the identity used when TEE_TCB_SVN[1] is 0
 * @param tdxModuleIdentities TDX only: {@code TDX_%02X} identities with their own TCB levels
 */
public record TcbInfo(
    String id,
    int version,
    Instant issueDate,
    Instant nextUpdate,
    int tcbEvaluationDataNumber,
    byte[] fmspc,
    byte[] pceId,
    Optional<ModuleIdentity> tdxModule,
    List<ModuleIdentity> tdxModuleIdentities,
    List<Level> levels) {

  /** One platform TCB level; {@code tdx} is empty for SGX. */
  public record Level(int[] sgx, int pceSvn, int[] tdx, TcbStatus status, List<String> advisories) {}

  /** One level of a QE Identity or a TDX module identity. */
  public record IsvLevel(int isvSvn, TcbStatus status, List<String> advisories) {}

  public record ModuleIdentity(
      String id, byte[] mrSigner, byte[] attributes, byte[] attributesMask, List<IsvLevel> levels) {}

  static TcbInfo parse(String text) {
    Map<String, Object> m = Json.obj(Json.parse(text), "tcbInfo");
    Optional<ModuleIdentity> module = m.containsKey("tdxModule")
        ? Optional.of(module(Json.obj(m, "tdxModule"), false)) : Optional.empty();
    List<ModuleIdentity> identities = new ArrayList<>();
    if (m.containsKey("tdxModuleIdentities")) {
      for (Object o : Json.list(m, "tdxModuleIdentities")) identities.add(module(Json.obj(o, "tdxModuleIdentities"), true));
    }
    List<Level> levels = new ArrayList<>();
    for (Object o : Json.list(m, "tcbLevels")) levels.add(level(Json.obj(o, "tcbLevels")));
    return new TcbInfo(Json.str(m, "id"), Json.integer(m, "version"), time(m, "issueDate"),
        time(m, "nextUpdate"), Json.integer(m, "tcbEvaluationDataNumber"), hex(m, "fmspc"), hex(m, "pceId"), module, List.copyOf(identities),
        List.copyOf(levels));
  }

  private static ModuleIdentity module(Map<String, Object> m, boolean withLevels) {
    String id = m.containsKey("id") ? Json.str(m, "id") : "";
    return new ModuleIdentity(id, hex(m, "mrsigner"), hex(m, "attributes"), hex(m, "attributesMask"),
        withLevels ? isvLevels(m) : List.of());
  }

  private static Level level(Map<String, Object> m) {
    Map<String, Object> tcb = Json.obj(m, "tcb");
    int[] tdx = tcb.containsKey("tdxtcbcomponents") ? svns(Json.list(tcb, "tdxtcbcomponents")) : new int[0];
    return new Level(svns(Json.list(tcb, "sgxtcbcomponents")), Json.integer(tcb, "pcesvn"), tdx,
        TcbStatus.fromJson(Json.str(m, "tcbStatus")), advisories(m));
  }

  static List<IsvLevel> isvLevels(Map<String, Object> m) {
    List<IsvLevel> out = new ArrayList<>();
    for (Object o : Json.list(m, "tcbLevels")) {
      Map<String, Object> l = Json.obj(o, "tcbLevels");
      out.add(new IsvLevel(Json.integer(Json.obj(l, "tcb"), "isvsvn"),
          TcbStatus.fromJson(Json.str(l, "tcbStatus")), advisories(l)));
    }
    return List.copyOf(out);
  }

  private static int[] svns(List<?> components) {
    if (components.size() != 16) throw new IllegalArgumentException("TCB level needs 16 components, got " + components.size());
    int[] out = new int[16];
    for (int i = 0; i < 16; i++) out[i] = Json.integer(Json.obj(components.get(i), "component"), "svn");
    return out;
  }

  static List<String> advisories(Map<String, Object> m) {
    if (!m.containsKey("advisoryIDs")) return List.of();
    return Json.list(m, "advisoryIDs").stream().map(String.class::cast).toList();
  }

  static Instant time(Map<String, Object> m, String field) {
    return Instant.parse(Json.str(m, field));
  }

  static byte[] hex(Map<String, Object> m, String field) {
    return HexFormat.of().parseHex(Json.str(m, field));
  }
}
