package org.cocoonjvm.attest.dcap;

/** A TCB level's status as Intel's TCB Info and QE Identity name it. */
public enum TcbStatus {
  UP_TO_DATE("UpToDate"),
  SW_HARDENING_NEEDED("SWHardeningNeeded"),
  CONFIGURATION_NEEDED("ConfigurationNeeded"),
  CONFIGURATION_AND_SW_HARDENING_NEEDED("ConfigurationAndSWHardeningNeeded"),
  OUT_OF_DATE("OutOfDate"),
  OUT_OF_DATE_CONFIGURATION_NEEDED("OutOfDateConfigurationNeeded"),
  REVOKED("Revoked"),
  /**
   * Verifier-derived, TD 1.5 only: the TD launched under an out-of-date TDX module but the module
   * it runs on now (TEE_TCB_SVN2) meets the latest level, so relaunching the TD brings it up to date.
   */
  TD_RELAUNCH_ADVISED("TDRelaunchAdvised"),
  /** {@link #TD_RELAUNCH_ADVISED}, and the platform also needs configuration changes. */
  TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED("TDRelaunchAdvisedConfigurationNeeded");

  private final String jsonName;

  TcbStatus(String jsonName) {
    this.jsonName = jsonName;
  }

  public String jsonName() {
    return jsonName;
  }

  /** A status as TCB Info / QE Identity JSON carries it; the verifier-derived ones never appear there. */
  static TcbStatus fromJson(String name) {
    for (TcbStatus s : values()) if (s.jsonName.equals(name) && !s.isTdRelaunch()) return s;
    throw new IllegalArgumentException("unknown tcbStatus " + name);
  }

  /**
   * Intel's convergence of the platform status with a module or QE status: OutOfDate lowers
   * UpToDate/SWHardeningNeeded to OutOfDate and the Configuration statuses to
   * OutOfDateConfigurationNeeded; Revoked wins; anything else keeps the platform status.
   */
  TcbStatus convergeWith(TcbStatus other) {
    if (other == REVOKED || this == REVOKED) return REVOKED;
    if (other != OUT_OF_DATE) return this;
    return switch (this) {
      case UP_TO_DATE, SW_HARDENING_NEEDED, OUT_OF_DATE -> OUT_OF_DATE;
      case CONFIGURATION_NEEDED, CONFIGURATION_AND_SW_HARDENING_NEEDED, OUT_OF_DATE_CONFIGURATION_NEEDED ->
          OUT_OF_DATE_CONFIGURATION_NEEDED;
      case TD_RELAUNCH_ADVISED -> OUT_OF_DATE;
      case TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED -> OUT_OF_DATE_CONFIGURATION_NEEDED;
      case REVOKED -> REVOKED;
    };
  }

  boolean isTdRelaunch() {
    return this == TD_RELAUNCH_ADVISED || this == TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
  }

  /** Intel's "configuration needed" family, which selects the relaunch status variant. */
  boolean needsConfiguration() {
    return switch (this) {
      case CONFIGURATION_NEEDED, OUT_OF_DATE_CONFIGURATION_NEEDED, CONFIGURATION_AND_SW_HARDENING_NEEDED,
          TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED -> true;
      default -> false;
    };
  }
}
