package org.cocoonjvm.attest.dcap;

import java.time.Instant;
import java.util.List;
import java.util.Map;

/** QE Identity v2 ({@code QE} for SGX, {@code TD_QE} for TDX), read from the signed JSON text. */
public record QeIdentity(
    String id,
    int version,
    Instant issueDate,
    Instant nextUpdate,
    int tcbEvaluationDataNumber,
    byte[] miscSelect,
    byte[] miscSelectMask,
    byte[] attributes,
    byte[] attributesMask,
    byte[] mrSigner,
    int isvProdId,
    List<TcbInfo.IsvLevel> levels) {

  static QeIdentity parse(String text) {
    Map<String, Object> m = Json.obj(Json.parse(text), "enclaveIdentity");
    return new QeIdentity(Json.str(m, "id"), Json.integer(m, "version"),
        TcbInfo.time(m, "issueDate"), TcbInfo.time(m, "nextUpdate"), Json.integer(m, "tcbEvaluationDataNumber"),
        TcbInfo.hex(m, "miscselect"), TcbInfo.hex(m, "miscselectMask"),
        TcbInfo.hex(m, "attributes"), TcbInfo.hex(m, "attributesMask"),
        TcbInfo.hex(m, "mrsigner"), Json.integer(m, "isvprodid"), TcbInfo.isvLevels(m));
  }
}
