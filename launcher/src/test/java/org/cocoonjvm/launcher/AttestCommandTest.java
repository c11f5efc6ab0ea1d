package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.launcher.AttestCli.assertRejected;

import io.vertx.core.json.JsonObject;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.cocoonjvm.launcher.AttestCli.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code cocoon attest verify} in-process, against the shared attestation fixtures at each case's fixed time. */
class AttestCommandTest {
    @TempDir Path tmp;

    static Run run(String... args) {
        return AttestCli.run("verify", args);
    }

    static String f(String rel) {
        return AttestCli.fixture(rel);
    }

    @Test
    void upToDateTdxQuoteIsAcceptedWithItsMeasurements() {
        Run r = run("--quote", f("dcap-qvl/tdx_quote"), "--collateral", f("dcap-qvl/tdx_quote_collateral.json"),
                "--at", "2025-07-19T10:00:34Z");
        assertThat(r.exit()).as(r.raw()).isZero();
        JsonObject j = r.json();
        assertThat(j.getString("status")).isEqualTo("UpToDate");
        assertThat(j.getJsonArray("advisories")).isEmpty();
        assertThat(j.getBoolean("accepted")).isTrue();
        assertThat(j.getString("fmspc")).isEqualToIgnoringCase("B0C06F000000");
        JsonObject m = j.getJsonObject("measurements");
        assertThat(m.getString("mrtd")).isEqualTo(
                "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7");
        assertThat(m.getString("rtmr0")).isEqualTo(
                "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0");
        assertThat(m.getString("report_data")).isEqualTo(
                "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
                        + "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20");
        assertThat(m.fieldNames()).contains("rtmr1", "rtmr2", "rtmr3");
        assertThat(j.getString("tee")).isEqualTo("TDX");
        assertThat(j.getString("image_hash")).hasSize(64);
        assertThat(j.containsKey("error")).isFalse();
    }

    @Test
    void hexTextQuoteIsDecoded() {
        Run r = run("--quote", f("dcap-qvl/near_quote_hex.txt"), "--collateral", f("dcap-qvl/near_quote_collateral.json"),
                "--at", "2025-10-02T07:03:50Z");
        assertThat(r.exit()).as(r.raw()).isZero();
        assertThat(r.json().getString("status")).isEqualTo("UpToDate");
    }

    @Test
    void outOfDateIsRejectedByTheDefaultPolicy() {
        Run r = runOutOfDate();
        assertThat(r.exit()).as(r.raw()).isEqualTo(1);
        assertThat(r.json().getString("status")).isEqualTo("OutOfDate");
        assertThat(r.json().getBoolean("accepted")).isFalse();
        assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("policy_rejected");
    }

    @Test
    void policyAcceptingOutOfDateAcceptsIt() throws Exception {
        Path policy = tmp.resolve("policy.json");
        Files.writeString(policy, "{\"accepted_statuses\": [\"UpToDate\", \"OutOfDate\"], \"allow_debug\": false}");
        Run r = runOutOfDate("--policy", policy.toString());
        assertThat(r.exit()).as(r.raw()).isZero();
        assertThat(r.json().getBoolean("accepted")).isTrue();
        assertThat(r.json().getString("status")).isEqualTo("OutOfDate");
    }

    @Test
    void missingPckCrlFailsInStrictMode() {
        Run r = run("--quote", f("trustee/tdx_quote_6.dat"),
                "--collateral", f("composed/trustee_2025-11_fmspc00a06d080000_collateral_NO_PCK_CRL.json"),
                "--at", "2025-11-01T00:00:00Z");
        assertRejected(r, "pck_crl_missing");
    }

    @Test
    void flippedBitInTheBodyBreaksTheQuoteSignature() throws Exception {
        byte[] q = Files.readAllBytes(Path.of(f("dcap-qvl/tdx_quote")));
        q[184] ^= 1;
        Path tampered = tmp.resolve("tampered");
        Files.write(tampered, q);
        Run r = run("--quote", tampered.toString(), "--collateral", f("dcap-qvl/tdx_quote_collateral.json"),
                "--at", "2025-07-19T10:00:34Z");
        assertThat(r.exit()).as(r.raw()).isEqualTo(1);
        assertThat(r.json().getBoolean("accepted")).isFalse();
        assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("quote_signature_invalid");
    }

    @Test
    void debugTdIsRejectedUnlessAllowed() throws Exception {
        String[] args = {"--quote", f("trustee/tdx_quote_4.dat"),
                "--collateral", f("composed/go-tdx-guest_2023-06_fmspc50806f000000_collateral.json"),
                "--at", "2023-07-01T01:00:00Z"};
        Run strict = run(args);
        assertThat(strict.exit()).as(strict.raw()).isEqualTo(1);
        assertThat(strict.json().getString("status")).isEqualTo("UpToDate");
        assertThat(strict.json().getJsonObject("error").getString("message")).contains("debug");
        Path policy = tmp.resolve("debug.json");
        Files.writeString(policy, "{\"allow_debug\": true}");
        List<String> withPolicy = new ArrayList<>(List.of(args));
        withPolicy.addAll(List.of("--policy", policy.toString()));
        Run lax = run(withPolicy.toArray(String[]::new));
        assertThat(lax.exit()).as(lax.raw()).isZero();
    }

    @Test
    void mrtdAllowList() throws Exception {
        String mrtd = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
        Path ok = tmp.resolve("ok.json");
        Files.writeString(ok, "{\"mrtd\": [\"" + mrtd.toUpperCase() + "\"]}");
        Path empty = tmp.resolve("empty.json");
        Files.writeString(empty, "{\"mrtd\": []}");
        String[] base = {"--quote", f("dcap-qvl/tdx_quote"), "--collateral", f("dcap-qvl/tdx_quote_collateral.json"),
                "--at", "2025-07-19T10:00:34Z", "--policy"};
        assertThat(run(concat(base, ok.toString())).exit()).isZero();
        Run rejected = run(concat(base, empty.toString()));
        assertThat(rejected.exit()).isEqualTo(1);
        assertThat(rejected.json().getJsonObject("error").getString("code")).isEqualTo("policy_rejected");
    }

    @Test
    void usageErrorsExitTwo() {
        assertThat(run("--quote", f("dcap-qvl/tdx_quote"), "--collateral", f("dcap-qvl/tdx_quote_collateral.json"),
                "--at", "yesterday").exit()).isEqualTo(2);
        assertThat(run("--quote", f("dcap-qvl/no-such-file"), "--collateral", f("dcap-qvl/tdx_quote_collateral.json"),
                "--at", "2025-07-19T10:00:34Z").exit()).isEqualTo(2);
        assertThat(run("--quote", f("dcap-qvl/tdx_quote")).exit()).isEqualTo(2);
    }

    @Test
    void devQuoteVerifiesOnlyWithItsRootPinnedAndTheDevTeeAllowed() throws Exception {
        AttestCli.assumeFixtures();
        String reportData = "ab".repeat(64);
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new Cocoon());
        cli.setOut(new PrintWriter(out));
        Path dir = tmp.resolve("dev");
        assertThat(cli.execute("attest", "dev-quote", "--report-data", reportData, "--out", dir.toString())).isZero();
        assertThat(new JsonObject(out.toString().strip()).getString("tee")).isEqualTo("dev (not hardware-backed)");

        String now = java.time.Instant.now().toString();
        String[] base = {"--quote", dir.resolve("quote.dat").toString(), "--collateral", dir.resolve("collateral.json").toString(),
                "--at", now, "--report-data", reportData};
        Run unpinned = run(base);
        assertRejected(unpinned, "root_not_pinned");

        String[] pinned = concat(concat(base, "--dev-root"), dir.resolve("dev-root.pem").toString());
        Run notAllowed = run(pinned);
        assertThat(notAllowed.exit()).as(notAllowed.raw()).isEqualTo(1);
        assertThat(notAllowed.json().getString("tee")).isEqualTo("dev (not hardware-backed)");
        assertThat(notAllowed.json().getJsonArray("violations").getJsonObject(0).getString("code")).isEqualTo("dev_tee_not_allowed");

        Path policy = tmp.resolve("dev-policy.json");
        Files.writeString(policy, "{\"allow_dev_tee\": true}");
        Run ok = run(concat(concat(pinned, "--policy"), policy.toString()));
        assertThat(ok.exit()).as(ok.raw()).isZero();
        assertThat(ok.json().getString("tee")).isEqualTo("dev (not hardware-backed)");

        Run wrongBinding = run("--quote", dir.resolve("quote.dat").toString(), "--collateral", dir.resolve("collateral.json").toString(),
                "--at", now, "--report-data", "cd".repeat(64), "--dev-root", dir.resolve("dev-root.pem").toString(),
                "--policy", policy.toString());
        assertThat(wrongBinding.exit()).as(wrongBinding.raw()).isEqualTo(1);
        assertThat(wrongBinding.json().getJsonArray("violations").getJsonObject(0).getString("code")).isEqualTo("report_data_mismatch");
    }

    @Test
    void unknownPolicyKeyIsAUsageError() throws Exception {
        Path policy = tmp.resolve("typo.json");
        Files.writeString(policy, "{\"alow_debug\": true}");
        Run r = run("--quote", f("dcap-qvl/tdx_quote"), "--collateral", f("dcap-qvl/tdx_quote_collateral.json"),
                "--at", "2025-07-19T10:00:34Z", "--policy", policy.toString());
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.json().getJsonObject("error").getString("message")).contains("alow_debug");
    }

    private Run runOutOfDate(String... extra) {
        List<String> args = new ArrayList<>(List.of("--quote", f("trustee/tdx_quote_6.dat"),
                "--collateral", f("composed/trustee_2025-11_fmspc00a06d080000_collateral_NO_PCK_CRL.json"),
                "--at", "2025-11-01T00:00:00Z", "--allow-missing-pck-crl"));
        args.addAll(List.of(extra));
        return run(args.toArray(String[]::new));
    }

    private static String[] concat(String[] a, String b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + 1);
        r[a.length] = b;
        return r;
    }
}
