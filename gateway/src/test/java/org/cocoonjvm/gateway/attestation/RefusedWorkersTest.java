package org.cocoonjvm.gateway.attestation;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

class RefusedWorkersTest {
    @Test
    void repeatsFromOneHostCountInOneRow_newestFirst_bounded() {
        RefusedWorkers refused = new RefusedWorkers(Clock.fixed(Instant.parse("2026-01-01T00:00:00Z"), ZoneOffset.UTC));
        refused.add("10.0.0.1:5000", null, "attestation_rejected", "mrtd_not_allowed: …", "TDX", "ab");
        refused.add("10.0.0.1:5001", null, "attestation_rejected", "mrtd_not_allowed: …", "TDX", "ab");
        refused.add("10.0.0.2:6000", "w-2", "model_not_allowed", "model x@… not in []", "TDX", "cd");
        assertThat(refused.all()).hasSize(2);
        RefusedWorkers.Refusal first = refused.all().stream().filter(r -> r.host().equals("10.0.0.1")).findFirst().orElseThrow();
        assertThat(first.count()).isEqualTo(2);
        assertThat(first.lastRemote()).isEqualTo("10.0.0.1:5001");

        for (int i = 0; i < RefusedWorkers.MAX_ROWS + 10; i++) {
            refused.add("10.1.0." + i + ":1", null, "cert_expired", "…", null, null);
        }
        assertThat(refused.all()).hasSize(RefusedWorkers.MAX_ROWS);
        assertThat(refused.toJson().getJsonObject(0).getString("reason")).isEqualTo("cert_expired");
    }

    /** Audit X2, note 5: a worker refused and then registered fine was still listed as refused. */
    @Test
    void aWorkerThatRegisters_dropsItsRefusalsFromItsHost_only() {
        RefusedWorkers refused = new RefusedWorkers(Clock.fixed(Instant.parse("2026-01-01T00:00:00Z"), ZoneOffset.UTC));
        refused.add("10.0.0.1:5000", "w-1", "invalid_hello", "chat_template_tokens … past the 65536", null, null);
        refused.add("10.0.0.1:5001", "w-1", "worker_id_in_use", "…", null, null);
        refused.add("10.0.0.2:6000", "w-1", "worker_id_in_use", "…", null, null);
        refused.add("10.0.0.1:5002", "w-2", "invalid_hello", "…", null, null);
        refused.add("10.0.0.1:443", null, "attestation_rejected", "…", "TDX", "ab");

        refused.registered("10.0.0.1:5003", "w-1");

        assertThat(refused.all()).extracting(r -> r.host() + " " + r.workerId() + " " + r.code())
                .containsExactlyInAnyOrder("10.0.0.2 w-1 worker_id_in_use", "10.0.0.1 w-2 invalid_hello",
                        "10.0.0.1 null attestation_rejected");
        assertThat(refused.add("10.0.0.1:5004", "w-1", "invalid_hello", "…", null, null))
                .as("a later refusal is a new row, logged at once").isTrue();
    }
}
