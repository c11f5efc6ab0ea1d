package org.cocoonjvm.attest.policy;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What a peer's GPU evidence (the RA-TLS GPU extension) must satisfy. Evidence that is present is
 * always verified (device chain to the pinned NVIDIA root, SPDM signature, FWID, nonce bound to the
 * TLS key); {@code required} refuses peers without it; {@code rims}, when not empty, adds the
 * reference-measurement comparison, with the driver and VBIOS RIM picked by the versions the
 * evidence reports; {@code driverVersions} limits the driver versions accepted.
 *
 * @param rims signed RIM (SWID tag) XML documents, as read from the policy's {@code rims} paths
 */
public record GpuPolicy(boolean required, List<byte[]> rims, AllowList driverVersions) {
  /** Default: GPU evidence not required, checked when present, no RIMs, any driver version. */
  public static final GpuPolicy OPTIONAL = new GpuPolicy(false, List.of(), AllowList.ANY);

  private static final Set<String> KEYS = Set.of("required", "rims", "driver_versions");

  public GpuPolicy {
    rims = rims.stream().map(byte[]::clone).toList();
  }

  /**
   * The {@code gpu} object of policy JSON: {@code {"required": bool, "rims": ["path", …],
   * "driver_versions": ["550.90.07", …] | "any"}}. RIM files are read here, so a missing file
   * fails at startup rather than at the first handshake.
   */
  static GpuPolicy parse(Object value, GpuPolicy base) {
    if (!(value instanceof JsonObject o)) throw new IllegalArgumentException("policy: gpu must be an object");
    for (String k : o.fieldNames()) {
      if (!KEYS.contains(k)) throw new IllegalArgumentException("policy: unknown key 'gpu." + k + "' (known: " + KEYS + ")");
    }
    boolean required = base.required;
    if (o.containsKey("required")) {
      if (!(o.getValue("required") instanceof Boolean b)) throw new IllegalArgumentException("policy: gpu.required must be true or false");
      required = b;
    }
    List<byte[]> rims = base.rims;
    if (o.containsKey("rims")) {
      rims = new ArrayList<>();
      for (String path : PolicyJson.strings(o, "rims", "gpu.rims")) {
        try {
          rims.add(Files.readAllBytes(Path.of(path)));
        } catch (IOException e) {
          throw new IllegalArgumentException("policy: gpu.rims: cannot read " + path + ": " + e.getMessage(), e);
        }
      }
    }
    AllowList drivers = base.driverVersions;
    if (o.containsKey("driver_versions")) {
      drivers = "any".equals(o.getValue("driver_versions")) ? AllowList.ANY
          : AllowList.of(new LinkedHashSet<>(PolicyJson.strings(o, "driver_versions", "gpu.driver_versions")));
    }
    return new GpuPolicy(required, rims, drivers);
  }
}
