package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.launcher.AttestCli.assertRejected;

import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.cocoonjvm.launcher.AttestCli.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cocoon attest verify-gpu} in-process, against the shared NVIDIA fixtures. */
class AttestGpuCommandTest {
    static final String LEGACY_NONCE = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e";
    static final String SAMPLE_NONCE = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

    @TempDir Path tmp;

    static Run run(String... args) {
        return AttestCli.run("verify-gpu", args);
    }

    static String f(String rel) {
        return AttestCli.fixture(rel);
    }

    /** One GPU's evidence and device chain, no RIMs. */
    private static Run evidenceOnly(String evidence, String certChain, String nonce, String at) {
        return run("--evidence", evidence, "--cert-chain", certChain, "--nonce", nonce, "--at", at, "--evidence-only");
    }

    private static String[] legacy(String... extra) {
        List<String> args = new ArrayList<>(List.of(
                "--evidence", f("nvtrust/legacy-2023/attestationReport.txt"),
                "--cert-chain", f("nvtrust/legacy-2023/gpuAkCertChain.txt"),
                "--nonce", LEGACY_NONCE, "--at", "2024-06-01T00:00:00Z"));
        args.addAll(List.of(extra));
        return args.toArray(String[]::new);
    }

    @Test
    void legacyEvidenceWithBothRims_isAcceptedWithItsMeasurements() {
        Run r = run(legacy("--rim", f("nvtrust/legacy-2023/1010_0200_882_96005E0001_test_no_gpu.swidtag"),
                "--rim", f("nvtrust/legacy-2023/Driver_RIM_test_no_gpu.swidtag")));
        assertThat(r.exit()).as(r.raw()).isZero();
        JsonObject j = r.json();
        assertThat(j.getBoolean("accepted")).isTrue();
        assertThat(j.getString("driver_version")).isEqualTo("545.00");
        assertThat(j.getString("vbios_version")).isEqualTo("96.00.5E.00.01");
        assertThat(j.getString("driver_rim")).isEqualTo("545.00");
        assertThat(j.getString("fwid")).hasSize(96);
        JsonObject m = j.getJsonObject("measurements");
        assertThat(m.getInteger("compared")).isEqualTo(32);
        assertThat(m.getJsonArray("skipped").getList()).containsExactly(35);
        assertThat(m.getJsonArray("mismatches")).isEmpty();
        assertThat(j.containsKey("error")).isFalse();
    }

    @Test
    void evidenceOnly_isAcceptedWithoutMeasurements() {
        Run r = evidenceOnly(f("nvtrust/hopperAttestationReport.txt"), f("nvtrust/hopperCertChain.txt"),
                SAMPLE_NONCE, "2025-01-01T00:00:00Z");
        assertThat(r.exit()).as(r.raw()).isZero();
        assertThat(r.json().getString("fwid")).startsWith("f5c384ae");
        assertThat(r.json().getJsonObject("measurements").getBoolean("checked")).isFalse();
    }

    @Test
    void rimsForAnotherVersion_areRejected() {
        Run r = run("--evidence", f("nvtrust/hopperAttestationReport.txt"), "--cert-chain", f("nvtrust/hopperCertChain.txt"),
                "--nonce", SAMPLE_NONCE, "--at", "2024-06-01T00:00:00Z",
                "--rim", f("nvtrust/rims/Driver_RIM_test_no_gpu.swidtag"),
                "--rim", f("nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag"));
        assertThat(r.exit()).as(r.raw()).isEqualTo(1);
        assertThat(r.json().getString("driver_version")).isEqualTo("550.90.07");
        assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("rim_version_mismatch");
    }

    @Test
    void wrongNonce_isRejected() {
        Run r = evidenceOnly(f("nvtrust/legacy-2023/attestationReport.txt"), f("nvtrust/legacy-2023/gpuAkCertChain.txt"),
                SAMPLE_NONCE, "2024-06-01T00:00:00Z");
        assertRejected(r, "nonce_mismatch");
    }

    @Test
    void flippedBitInTheSignedEvidence_isRejected() throws Exception {
        String hex = Files.readString(Path.of(f("nvtrust/legacy-2023/attestationReport.txt"))).strip();
        byte[] evidence = HexFormat.of().parseHex(hex);
        evidence[61] ^= 1; // inside the first measurement value
        Path tampered = tmp.resolve("evidence.bin");
        Files.write(tampered, evidence);
        Run r = evidenceOnly(tampered.toString(), f("nvtrust/legacy-2023/gpuAkCertChain.txt"),
                LEGACY_NONCE, "2024-06-01T00:00:00Z");
        assertRejected(r, "evidence_signature_invalid");
    }

    @Test
    void rootOnlyChain_isRejected() {
        Run r = evidenceOnly(f("nvtrust/hopperAttestationReport.txt"), f("trustee/nvidia/hopper_cert_chain_case2.txt"),
                SAMPLE_NONCE, "2025-01-01T00:00:00Z");
        assertRejected(r, "device_chain_malformed");
    }

    @Test
    void ppcieJson_verifiesEveryGpu() {
        Run r = run("--evidence", f("nvtrust/ppcie_gpu_evidence.json"),
                "--nonce", "4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e",
                "--at", "2025-11-01T00:00:00Z", "--evidence-only");
        assertThat(r.exit()).as(r.raw()).isZero();
        assertThat(r.json().getJsonArray("gpus")).hasSize(8);
        for (int i = 0; i < 8; i++) {
            JsonObject gpu = r.json().getJsonArray("gpus").getJsonObject(i);
            assertThat(gpu.getBoolean("accepted")).isTrue();
            assertThat(gpu.getString("driver_version")).isEqualTo("590.12");
            assertThat(gpu.getString("vbios_version")).isEqualTo("96.00.A5.00.01");
        }
    }

    @Test
    void ppcieSwitchEvidence_isAnUnsupportedArchitecture() {
        Run r = run("--evidence", f("nvtrust/ppcie_switch_evidence.json"),
                "--nonce", "4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e",
                "--at", "2025-11-01T00:00:00Z", "--evidence-only");
        assertThat(r.exit()).as(r.raw()).isEqualTo(1);
        assertThat(r.json().getJsonArray("gpus").getJsonObject(0).getJsonObject("error").getString("code"))
                .isEqualTo("unsupported_architecture");
    }

    @Test
    void usageErrorsExitTwo() {
        assertThat(run(legacy()).exit()).as("no RIMs and no --evidence-only").isEqualTo(2);
        assertThat(run(legacy("--rim", f("nvtrust/legacy-2023/Driver_RIM_test_no_gpu.swidtag"))).exit()).isEqualTo(2);
        assertThat(run("--evidence", f("nvtrust/legacy-2023/attestationReport.txt"), "--nonce", LEGACY_NONCE,
                "--at", "2024-06-01T00:00:00Z", "--evidence-only").exit()).as("no chain").isEqualTo(2);
        assertThat(run("--evidence", f("nvtrust/legacy-2023/attestationReport.txt"),
                "--cert-chain", f("nvtrust/legacy-2023/gpuAkCertChain.txt"), "--nonce", "abcd",
                "--at", "2024-06-01T00:00:00Z", "--evidence-only").exit()).as("short nonce").isEqualTo(2);
        assertThat(run(legacy("--evidence-only", "--at", "yesterday")).exit()).isEqualTo(2);
        Run missing = run("--evidence", f("nvtrust/no-such-file"), "--cert-chain", f("nvtrust/hopperCertChain.txt"),
                "--nonce", SAMPLE_NONCE, "--at", "2025-01-01T00:00:00Z", "--evidence-only");
        assertThat(missing.exit()).isEqualTo(2);
        assertThat(missing.json().getJsonObject("error").getString("code")).isEqualTo("usage");
    }
}
