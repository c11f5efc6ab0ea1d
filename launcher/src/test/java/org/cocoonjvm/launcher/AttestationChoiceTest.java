package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.dcap.QuoteCollateralSource;
import org.cocoonjvm.attest.nvidia.GpuNonce;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.cocoonjvm.attest.ratls.NodeConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code --attestation}, {@code --policy}, {@code --dev-seed-file}, the tdx collateral source
 * ({@code --collateral}, {@code --pccs}, {@code --pcs}) and {@code --gpu-evidence-command} as the
 * gateway and worker commands read them.
 */
class AttestationChoiceTest {
    @TempDir
    Path dir;

    private AttestationChoice parse(String... args) {
        AttestationChoice choice = new AttestationChoice();
        new CommandLine(choice).parseArgs(args);
        return choice;
    }

    private Path file(String name, String content) throws Exception {
        return Files.writeString(dir.resolve(name), content);
    }

    @Test
    void none_isTheDefault_andBuildsNoNode() throws Exception {
        assertThat(parse().node("test", Clock.systemUTC(), NodeConfig.NONE)).isEmpty();
    }

    @Test
    void dev_withSeedAndPolicy_buildsADevNode() throws Exception {
        Path seed = file("seed.hex", "ab".repeat(32) + "\n");
        Path policy = file("policy.json", "{\"allow_dev_tee\": true}");
        var node = parse("--attestation", "dev", "--dev-seed-file", seed.toString(), "--policy", policy.toString())
                .node("test", Clock.systemUTC(), NodeConfig.NONE);
        assertThat(node).hasValueSatisfying(n -> assertThat(n.tee()).isEqualTo("dev (not hardware-backed)"));
    }

    /**
     * The node's certificate says what it was given (its role, a worker's engine) and the SHA-256
     * of its --policy file, so that a peer's policy can pin them (attest-verifier, NodeConfig).
     */
    @Test
    void theNodesCertificate_carriesItsConfigurationClaims_andItsPolicysDigest() throws Exception {
        Path seed = file("seed.hex", "ab".repeat(32));
        String policyText = "{\"allow_dev_tee\": true}";
        Path policy = file("policy.json", policyText);
        var node = parse("--attestation", "dev", "--dev-seed-file", seed.toString(), "--policy", policy.toString())
                .node("test", Clock.systemUTC(), NodeConfig.of(java.util.Map.of("role", "worker", "engine", "native")))
                .orElseThrow();
        String digest = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(policyText.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        assertThat(node.evidence().getJsonObject("config").getMap()).containsExactlyInAnyOrderEntriesOf(java.util.Map.of(
                "role", "worker", "engine", "native", "peer_policy_sha256", digest));
    }

    @Test
    void pccs_fetchesCollateralForEachPeerQuotesFmspcFromThatUrl() throws Exception {
        byte[] quote = Files.readAllBytes(Path.of(AttestCli.fixture("dcap-qvl/tdx_quote")));
        Vertx vertx = Vertx.vertx();
        try {
            List<String> asked = new CopyOnWriteArrayList<>();
            // Answers nothing: the test is where the node asks, for which platform; CollateralSourceTest covers the answers.
            HttpServer pccs = vertx.createHttpServer().requestHandler(req -> {
                asked.add(req.uri());
                req.response().setStatusCode(404).end();
            }).listen(0, "127.0.0.1").await();
            CollateralSource source = parse("--pccs", "http://127.0.0.1:" + pccs.actualPort())
                    .collateralSource(Clock.fixed(Instant.parse("2025-07-19T10:00:34Z"), ZoneOffset.UTC));
            assertThat(source).isInstanceOf(QuoteCollateralSource.class);
            assertThatThrownBy(() -> source.collateralFor(QuoteParser.parse(quote))).isInstanceOf(IOException.class)
                    .hasMessageContaining("collateral_not_found");
            assertThat(asked).anySatisfy(uri -> assertThat(uri).startsWith("/tdx/certification/v4/tcb?fmspc=")
                    .containsIgnoringCase("b0c06f000000"));
        } finally {
            vertx.close().await();
        }
    }

    /** Audit I-5: plain http is for a PCCS on this machine only; elsewhere collateral could be swapped on the way. */
    @Test
    void pccs_overPlainHttp_onlyOnLoopback() throws Exception {
        for (String url : List.of("https://pccs.example:8081", "http://127.0.0.1:8081", "http://127.8.9.10:8081",
                "http://localhost:8081", "http://[::1]:8081")) {
            assertThat(parse("--pccs", url).collateralSource(Clock.systemUTC())).as(url).isInstanceOf(QuoteCollateralSource.class);
        }
        assertThatThrownBy(() -> parse("--pccs", "http://pccs.example:8081").collateralSource(Clock.systemUTC()))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("https");
    }

    @Test
    void gpuEvidenceCommand_putsItsEvidenceInTheNodesCertificate() throws Exception {
        Path seed = file("seed.hex", "ab".repeat(32));
        Path policy = file("policy.json", "{\"allow_dev_tee\": true}");
        Path script = file("gpu.sh", "printf '{\"evidence\":\"%s\",\"certificate_chain\":\"-----BEGIN CERTIFICATE-----\"}' \"$1\"\n");
        var node = parse("--attestation", "dev", "--dev-seed-file", seed.toString(), "--policy", policy.toString(),
                "--gpu-evidence-command", "sh " + script).node("test", Clock.systemUTC(), NodeConfig.NONE).orElseThrow();
        byte[] key = node.keys().identity().certificate().getPublicKey().getEncoded();
        byte[] raw = java.util.Arrays.copyOfRange(key, key.length - 32, key.length);
        assertThat(node.evidence().getJsonObject("gpu_evidence").getString("evidence")).isEqualTo(
                Base64.getEncoder().encodeToString(GpuNonce.forTlsPublicKey(raw)));
    }

    @Test
    void missingOrBadInputs_areUsageErrorsNamingTheOption() throws Exception {
        Path seed = file("seed.hex", "ab".repeat(32));
        Path policy = file("policy.json", "{\"allow_dev_tee\": true}");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--dev-seed-file", seed.toString()).node("t", Clock.systemUTC(), NodeConfig.NONE))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("--policy");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--policy", policy.toString()).node("t", Clock.systemUTC(), NodeConfig.NONE))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("--dev-seed-file");
        Path shortSeed = file("short.hex", "abcd");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--dev-seed-file", shortSeed.toString(), "--policy",
                policy.toString()).node("t", Clock.systemUTC(), NodeConfig.NONE)).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("32 bytes");
        Path typo = file("typo.json", "{\"allow_dev_te\": true}");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--dev-seed-file", seed.toString(), "--policy",
                typo.toString()).node("t", Clock.systemUTC(), NodeConfig.NONE)).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("--policy");
        assertThatThrownBy(() -> parse("--attestation", "tdx", "--policy", policy.toString()).node("t", Clock.systemUTC(), NodeConfig.NONE))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("--collateral");
        assertThatThrownBy(() -> parse("--attestation", "tdx", "--policy", policy.toString(), "--pcs", "--pccs",
                "http://127.0.0.1:1").node("t", Clock.systemUTC(), NodeConfig.NONE)).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("exactly one");
        assertThatThrownBy(() -> parse("--pccs", "file:///etc").collateralSource(Clock.systemUTC()))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("http(s)");
        assertThatThrownBy(() -> parse("--attestation", "tdx", "--policy", policy.toString(), "--pccs",
                "http://pccs.example:8081").node("t", Clock.systemUTC(), NodeConfig.NONE)).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("--pccs must be https unless it is on loopback");
        assertThatThrownBy(() -> parse("--pccs", "http://127.0.0.1.nip.io:8081").collateralSource(Clock.systemUTC()))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("https");
        assertThatThrownBy(() -> parse("--pccs", "http://10.0.0.7:8081").collateralSource(Clock.systemUTC()))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("https");
        assertThatThrownBy(() -> parse("--attestation", "sgx")).isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("none, dev or tdx");
    }
}
