package org.cocoonjvm.attest.policy;

import java.util.List;
import java.util.Optional;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.quote.Quote;

/**
 * What cryptographic verification established about one quote; the policy's only input.
 *
 * @param imageHash present for TDX quotes ({@link ImageHash})
 * @param rootKeyId SHA-384(04‖X‖Y) of the PCK chain's root key, lower-case hex
 * @param tcbInfoEvaluationDataNumber the verified TCB Info's {@code tcbEvaluationDataNumber}
 * @param qeIdentityEvaluationDataNumber the verified QE Identity's
 */
public record Evidence(
    Quote quote, TeeKind tee, TcbStatus status, List<String> advisories,
    Optional<String> imageHash, String rootKeyId, int tcbInfoEvaluationDataNumber, int qeIdentityEvaluationDataNumber) {
  public Evidence {
    advisories = List.copyOf(advisories);
  }
}
