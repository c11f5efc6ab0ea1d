package org.cocoonjvm.launcher;

import io.vertx.core.json.JsonObject;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.attest.tee.QuoteSourceException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code cocoon attest …}: offline TDX/SGX DCAP attestation tools. */
@Command(name = "attest", mixinStandardHelpOptions = true, description = "Attestation tools.",
        subcommands = {AttestCommand.Verify.class, AttestCommand.DevQuote.class, AttestGpuCommand.class,
                AttestProxyCommand.class})
final class AttestCommand {

    /** Exit code when verification ran and the quote was rejected. */
    static final int REJECTED = 1;
    /** Exit code for usage errors (bad options, unreadable files). */
    static final int USAGE = 2;

    /**
     * {@code cocoon attest verify}: parse → signatures → collateral → TCB match → policy, against
     * the pinned Intel SGX Root CA (and a development root where given), at a fixed time.
     */
    @Command(name = "verify", mixinStandardHelpOptions = true,
            description = "Verify a TDX/SGX DCAP quote against collateral at a fixed time. "
                    + "Exit 0: accepted; 1: rejected; 2: usage error.")
    static final class Verify implements Callable<Integer> {
        @Spec CommandSpec spec;

        @Option(names = "--quote", required = true, description = "Quote file: binary, or hex text (optionally 0x-prefixed).")
        Path quoteFile;
        @Option(names = "--collateral", required = true, description = "Collateral JSON (dcap-qvl QuoteCollateralV3 shape).")
        Path collateralFile;
        @Option(names = "--at", required = true, description = "Verification time, ISO-8601 (e.g. 2025-07-19T10:00:34Z).")
        String at;
        @Option(names = "--policy", description = "Policy JSON (attest-verifier/README.md); keys given replace the defaults "
                + "(TDX only, UpToDate only, no debug, SEPT_VE_DISABLE required, Intel root, measurements not checked).")
        Path policyFile;
        @Option(names = "--report-data", description = "Expected report_data, 64 bytes of hex.")
        String reportDataHex;
        @Option(names = "--dev-root", description = "PEM certificate of a development TEE root to pin besides Intel's "
                + "(its quotes still need \"allow_dev_tee\": true in the policy).")
        Path devRootFile;
        @Option(names = "--allow-missing-pck-crl", description = "Accept collateral whose pck_crl is null.")
        boolean allowMissingPckCrl;
        @Option(names = "--json", description = "Print one JSON object (the only output format so far).")
        boolean json;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            Instant instant;
            byte[] quoteBytes;
            String collateralText;
            Policy policy;
            Optional<byte[]> reportData = Optional.empty();
            TrustAnchors anchors = TrustAnchors.intel();
            try {
                instant = Instant.parse(at);
            } catch (DateTimeParseException e) {
                return usage(out, "--at must be an ISO-8601 instant such as 2025-07-19T10:00:34Z, got '" + at + "'");
            }
            try {
                quoteBytes = readQuote(quoteFile);
                collateralText = Files.readString(collateralFile, StandardCharsets.UTF_8);
                policy = policyFile == null ? Policy.MEASUREMENTS_UNCHECKED
                        : Policy.parse(Files.readString(policyFile, StandardCharsets.UTF_8), Policy.MEASUREMENTS_UNCHECKED);
                if (reportDataHex != null) reportData = Optional.of(reportData(reportDataHex));
                if (devRootFile != null) anchors = anchors.withDevRoots(List.of(pemCertificate(devRootFile)));
            } catch (IOException e) {
                return usage(out, "cannot read " + e.getMessage());
            } catch (IllegalArgumentException | CertificateException e) {
                return usage(out, e.getMessage());
            }
            AttestationVerifier verifier = AttestationVerifier.create(anchors, Clock.fixed(instant, ZoneOffset.UTC));
            if (allowMissingPckCrl) verifier = verifier.allowingMissingPckCrl();
            AttestationResult result;
            try {
                result = verifier.verify(quoteBytes, Collateral.parse(collateralText), policy, reportData);
            } catch (IllegalArgumentException e) {
                result = AttestationVerifier.notVerified(quoteBytes, "collateral_malformed", e.getMessage());
            }
            out.println(result.toJson().encode());
            out.flush();
            return result.accepted() ? 0 : REJECTED;
        }
    }

    /**
     * {@code cocoon attest dev-quote}: a quote from the development TEE plus its collateral and
     * root, so {@code attest verify --dev-root} can be tried without TDX hardware.
     */
    @Command(name = "dev-quote", mixinStandardHelpOptions = true,
            description = "Write a development-TEE quote (NOT hardware-backed) with its collateral and dev root: "
                    + "quote.dat, collateral.json, dev-root.pem.")
    static final class DevQuote implements Callable<Integer> {
        @Spec CommandSpec spec;

        @Option(names = "--report-data", required = true, description = "report_data, 64 bytes of hex.")
        String reportDataHex;
        @Option(names = "--out", required = true, description = "Directory to write into (created if missing).")
        Path out;

        @Override
        public Integer call() {
            PrintWriter w = spec.commandLine().getOut();
            try {
                byte[] reportData = reportData(reportDataHex);
                DevTee tee = DevTee.generate(Clock.systemUTC());
                Files.createDirectories(out);
                Files.write(out.resolve("quote.dat"), tee.quote(reportData));
                Files.writeString(out.resolve("collateral.json"), tee.collateralJson());
                Files.writeString(out.resolve("dev-root.pem"), tee.rootPem());
                w.println(new JsonObject().put("tee", "dev (not hardware-backed)").put("out", out.toString())
                        .put("mrtd", tee.measurements().mrTdHex()).encode());
                w.flush();
                return 0;
            } catch (IllegalArgumentException e) {
                return usage(w, e.getMessage());
            } catch (IOException | QuoteSourceException e) {
                return usage(w, "cannot write the dev quote: " + e.getMessage());
            }
        }
    }

    private static int usage(PrintWriter out, String message) {
        out.println(new JsonObject().put("accepted", false)
                .put("error", new JsonObject().put("code", "usage").put("message", message)).encode());
        out.flush();
        return USAGE;
    }

    static byte[] reportData(String hex) {
        String h = hex.startsWith("0x") || hex.startsWith("0X") ? hex.substring(2) : hex;
        if (h.length() != 128 || !h.chars().allMatch(HexFormat::isHexDigit)) {
            throw new IllegalArgumentException("--report-data must be 64 bytes of hex (128 digits), got " + h.length() + " characters");
        }
        return HexFormat.of().parseHex(h);
    }

    static X509Certificate pemCertificate(Path file) throws IOException, CertificateException {
        byte[] pem = Files.readAllBytes(file);
        return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(pem));
    }

    /** A quote file: binary as is, or hex text (whitespace ignored, optional 0x prefix) decoded. */
    static byte[] readQuote(Path file) throws IOException {
        byte[] raw = Files.readAllBytes(file);
        String text = new String(raw, StandardCharsets.ISO_8859_1).strip();
        if (text.startsWith("0x") || text.startsWith("0X")) text = text.substring(2);
        String compact = text.replaceAll("\\s+", "");
        if (!compact.isEmpty() && compact.length() % 2 == 0 && compact.chars().allMatch(HexFormat::isHexDigit)) {
            return HexFormat.of().parseHex(compact);
        }
        return raw;
    }
}
