package org.cocoonjvm.attest;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.policy.PolicyViolation;
import org.cocoonjvm.attest.policy.TeeKind;
import org.cocoonjvm.attest.quote.EnclaveReportBody;
import org.cocoonjvm.attest.quote.Quote;
import org.cocoonjvm.attest.quote.TdReportBody;

/**
 * The outcome of {@link AttestationVerifier#verify}. Accepted iff there is no {@link #failure()}
 * (parse or cryptographic verification stopped) and no {@link #violations()} (policy). Fields after
 * the failing step are empty.
 *
 * @param quote present once the quote parsed
 * @param tee present once the PCK chain's root was matched to an anchor
 * @param collateralNextUpdate earliest nextUpdate of the CRLs, TCB Info and QE Identity: the
 *     result must not be reused after it
 */
public record AttestationResult(
    Optional<Quote> quote,
    Optional<TeeKind> tee,
    Optional<TcbStatus> status,
    List<String> advisories,
    Optional<String> imageHash,
    Optional<String> rootKeyId,
    Optional<String> fmspc,
    Optional<Instant> collateralNextUpdate,
    Optional<Failure> failure,
    List<PolicyViolation> violations) {

  /**
   * Parsing or cryptographic verification failed.
   *
   * @param code a {@code QuoteFormatException} or {@code VerificationException} code, or
   *     {@code collateral_malformed} / {@code collateral_unavailable}
   */
  public record Failure(String code, String message) {}

  public AttestationResult {
    advisories = List.copyOf(advisories);
    violations = List.copyOf(violations);
  }

  public boolean accepted() {
    return failure.isEmpty() && violations.isEmpty();
  }

  /** Every reason for refusal as {@code code: detail}; empty when accepted. */
  public List<String> reasons() {
    List<String> out = new ArrayList<>();
    failure.ifPresent(f -> out.add(f.message().startsWith(f.code()) ? f.message() : f.code() + ": " + f.message()));
    violations.forEach(v -> out.add(v.toString()));
    return out;
  }

  /**
   * A JSON rendering for CLIs and admin endpoints: {@code accepted}, {@code tee} (e.g. "TDX",
   * "dev (not hardware-backed)"), {@code status}, {@code advisories}, {@code image_hash},
   * {@code measurements}, {@code error {code, message}} and {@code violations [{code, detail}]}.
   */
  public JsonObject toJson() {
    JsonObject j = new JsonObject().put("accepted", accepted());
    tee.ifPresent(t -> j.put("tee", t.label()));
    quote.ifPresent(q -> j.put("version", q.version()).put("measurements", measurements(q)));
    status.ifPresent(s -> j.put("status", s.jsonName()).put("advisories", new JsonArray(advisories)));
    imageHash.ifPresent(h -> j.put("image_hash", h));
    fmspc.ifPresent(f -> j.put("fmspc", f));
    rootKeyId.ifPresent(r -> j.put("root_key_id", r));
    collateralNextUpdate.ifPresent(n -> j.put("collateral_next_update", n.toString()));
    failure.ifPresent(f -> j.put("error", new JsonObject().put("code", f.code()).put("message", f.message())));
    if (!violations.isEmpty()) {
      JsonArray v = new JsonArray();
      violations.forEach(p -> v.add(new JsonObject().put("code", p.code()).put("detail", p.detail())));
      j.put("violations", v);
      if (failure.isEmpty()) {
        j.put("error", new JsonObject().put("code", "policy_rejected")
            .put("message", String.join("; ", violations.stream().map(PolicyViolation::toString).toList())));
      }
    }
    return j;
  }

  private static JsonObject measurements(Quote quote) {
    JsonObject m = new JsonObject();
    if (quote.body() instanceof TdReportBody td) {
      m.put("mrtd", td.mrTdHex()).put("mr_config_id", td.mrConfigId().hex())
          .put("mr_owner", td.mrOwner().hex()).put("mr_owner_config", td.mrOwnerConfig().hex());
      for (int i = 0; i < 4; i++) m.put("rtmr" + i, td.rtmrHex(i));
      m.put("report_data", td.reportDataHex());
      m.put("td_attributes", String.format("%016x", td.tdAttributes())).put("xfam", String.format("%016x", td.xfam()))
          .put("mr_seam", td.mrSeam().hex());
      m.put("debug", td.debug());
    } else if (quote.body() instanceof EnclaveReportBody e) {
      m.put("mrenclave", e.mrEnclave().hex()).put("mrsigner", e.mrSigner().hex());
      m.put("report_data", e.reportDataHex());
      m.put("debug", (e.attributes().byteAt(0) & 0x02) != 0);
    }
    return m;
  }
}
