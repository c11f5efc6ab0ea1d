package org.cocoonjvm.attest.nvidia;

import java.util.List;

/**
 * One {@code Resource type="Measurement"} of a RIM.
 *
 * @param index RIM index (SPDM block index − 1)
 * @param active only active measurements are compared
 * @param size value size in bytes
 * @param alternativesHex the acceptable values {@code Hash0..HashN-1}, lower-case hex
 */
public record GoldenMeasurement(int index, boolean active, int size, List<String> alternativesHex) {
  public GoldenMeasurement {
    alternativesHex = List.copyOf(alternativesHex);
  }

  /** True when {@code runtime} has this measurement's size and equals one alternative. */
  public boolean matches(MeasurementBlock runtime) {
    return runtime.valueSize() == size && alternativesHex.contains(runtime.valueHex());
  }
}
