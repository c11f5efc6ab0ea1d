package org.cocoonjvm.attest.dcap;

/** A TCB level's status as Intel's TCB Info and QE Identity name it. */
public enum TcbStatus {
  UP_TO_DATE("UpToDate"),
  SW_HARDENING_NEEDED("SWHardeningNeeded"),
  CONFIGURATION_NEEDED("ConfigurationNeeded"),
  CONFIGURATION_AND_SW_HARDENING_NEEDED("ConfigurationAndSWHardeningNeeded"),
  OUT_OF_DATE("OutOfDate"),
  OUT_OF_DATE_CONFIGURATION_NEEDED("OutOfDateConfigurationNeeded"),
  REVOKED("Revoked");

  private final String jsonName;

  TcbStatus(String jsonName) {
    this.jsonName = jsonName;
  }

  public String jsonName() {
    return jsonName;
  }

  static TcbStatus fromJson(String name) {
    for (TcbStatus s : values()) if (s.jsonName.equals(name)) return s;
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
      case REVOKED -> REVOKED;
    };
  }
}
