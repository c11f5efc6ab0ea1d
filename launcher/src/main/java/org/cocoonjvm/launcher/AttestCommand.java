package org.cocoonjvm.launcher;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.dcap.CollateralVerifier;
import org.cocoonjvm.attest.dcap.QuoteSignatureVerifier;
import org.cocoonjvm.attest.dcap.TcbMatcher;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.dcap.TcbVerdict;
import org.cocoonjvm.attest.dcap.VerificationException;
import org.cocoonjvm.attest.dcap.VerifiedCollateral;
import org.cocoonjvm.attest.dcap.VerifiedSignatures;
import org.cocoonjvm.attest.quote.EnclaveReportBody;
import org.cocoonjvm.attest.quote.Quote;
import org.cocoonjvm.attest.quote.QuoteFormatException;
import org.cocoonjvm.attest.quote.QuoteParser;
import org.cocoonjvm.attest.quote.TdReportBody;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code cocoon attest …}: offline TDX/SGX DCAP attestation tools. */
@Command(name = "attest", mixinStandardHelpOptions = true, description = "Attestation tools.",
        subcommands = {AttestCommand.Verify.class, AttestGpuCommand.class})
final class AttestCommand {

    /** Exit code when verification ran and the quote was rejected. */
    static final int REJECTED = 1;
    /** Exit code for usage errors (bad options, unreadable files). */
    static final int USAGE = 2;

    static final String ROOT_RESOURCE = "attest/intel-sgx-root-ca.der";
    static final String ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

    /**
     * {@code cocoon attest verify}: parse → signatures → collateral → TCB match → policy, against
     * the pinned Intel SGX Root CA, at a fixed time.
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
        @Option(names = "--policy", description = "Policy JSON: {\"accepted_statuses\":[…],\"allow_debug\":false,\"mrtd\":[…hex…]}.")
        Path policyFile;
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
            try {
                instant = Instant.parse(at);
            } catch (DateTimeParseException e) {
                return usage(out, "--at must be an ISO-8601 instant such as 2025-07-19T10:00:34Z, got '" + at + "'");
            }
            try {
                quoteBytes = readQuote(quoteFile);
                collateralText = Files.readString(collateralFile, StandardCharsets.UTF_8);
                policy = policyFile == null ? Policy.DEFAULT : Policy.parse(Files.readString(policyFile, StandardCharsets.UTF_8));
            } catch (IOException e) {
                return usage(out, "cannot read " + e.getMessage());
            } catch (IllegalArgumentException | DecodeException | ClassCastException e) {
                return usage(out, e.getMessage());
            }
            JsonObject result = verify(quoteBytes, collateralText, Clock.fixed(instant, ZoneOffset.UTC), policy,
                    allowMissingPckCrl);
            out.println(result.encode());
            out.flush();
            return result.getBoolean("accepted") ? 0 : REJECTED;
        }

        private static int usage(PrintWriter out, String message) {
            out.println(new JsonObject().put("accepted", false)
                    .put("error", new JsonObject().put("code", "usage").put("message", message)).encode());
            out.flush();
            return USAGE;
        }
    }

    /** Runs the whole chain; never throws for a bad quote or collateral, only reports it. */
    static JsonObject verify(byte[] quoteBytes, String collateralText, Clock clock, Policy policy,
            boolean allowMissingPckCrl) {
        JsonObject result = new JsonObject().put("accepted", false);
        Quote quote;
        try {
            quote = QuoteParser.parse(quoteBytes);
        } catch (QuoteFormatException e) {
            return error(result, e.code(), e.getMessage());
        }
        result.put("tee", quote.isTdx() ? "TDX" : "SGX").put("version", quote.version());
        result.put("measurements", measurements(quote));
        X509Certificate root = pinnedRoot();
        try {
            VerifiedSignatures sigs = QuoteSignatureVerifier.create(root, clock).verify(quote);
            result.put("fmspc", sigs.pckExtensions().fmspc());
            Collateral collateral;
            try {
                collateral = Collateral.parse(collateralText);
            } catch (IllegalArgumentException e) {
                return error(result, "collateral_malformed", e.getMessage());
            }
            CollateralVerifier cv = CollateralVerifier.create(root.getPublicKey(), clock);
            if (allowMissingPckCrl) cv = cv.allowingMissingPckCrl();
            VerifiedCollateral vc = cv.verify(collateral, sigs);
            TcbVerdict verdict = TcbMatcher.match(vc);
            result.put("status", verdict.status().jsonName()).put("advisories", new JsonArray(List.copyOf(verdict.advisories())));
            List<String> rejections = policy.check(quote, verdict.status());
            if (rejections.isEmpty()) {
                result.put("accepted", true);
            } else {
                result.put("error", new JsonObject().put("code", "policy_rejected").put("message", String.join("; ", rejections)));
            }
            return result;
        } catch (VerificationException e) {
            return error(result, e.code(), e.getMessage());
        }
    }

    private static JsonObject error(JsonObject result, String code, String message) {
        return result.put("accepted", false).put("error", new JsonObject().put("code", code).put("message", message));
    }

    static JsonObject measurements(Quote quote) {
        JsonObject m = new JsonObject();
        if (quote.body() instanceof TdReportBody td) {
            m.put("mrtd", td.mrTdHex());
            for (int i = 0; i < 4; i++) m.put("rtmr" + i, td.rtmrHex(i));
            m.put("report_data", td.reportDataHex());
            m.put("debug", td.debug());
        } else if (quote.body() instanceof EnclaveReportBody e) {
            m.put("mrenclave", e.mrEnclave().hex()).put("mrsigner", e.mrSigner().hex());
            m.put("report_data", e.reportDataHex());
            m.put("debug", sgxDebug(e));
        }
        return m;
    }

    /** SGX ATTRIBUTES.FLAGS bit 1 (DEBUG). */
    static boolean sgxDebug(EnclaveReportBody e) {
        return (e.attributes().byteAt(0) & 0x02) != 0;
    }

    static boolean debug(Quote quote) {
        return quote.body() instanceof TdReportBody td ? td.debug()
                : sgxDebug((EnclaveReportBody) quote.body());
    }

    /** The pinned Intel SGX Root CA, checked against its known SHA-256. */
    static X509Certificate pinnedRoot() {
        try (InputStream in = AttestCommand.class.getResourceAsStream(ROOT_RESOURCE)) {
            if (in == null) throw new IllegalStateException("missing resource " + ROOT_RESOURCE);
            byte[] der = in.readAllBytes();
            String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(der));
            if (!sha.equals(ROOT_SHA256)) throw new IllegalStateException("pinned root hash mismatch: " + sha);
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
        } catch (Exception e) {
            throw new IllegalStateException("cannot load the pinned Intel SGX Root CA", e);
        }
    }

    /** A quote file: binary as is, or hex text (whitespace ignored, optional 0x prefix) decoded. */
    static byte[] readQuote(Path file) throws IOException {
        byte[] raw = Files.readAllBytes(file);
        String text = new String(raw, StandardCharsets.ISO_8859_1).strip();
        if (text.startsWith("0x") || text.startsWith("0X")) text = text.substring(2);
        String compact = text.replaceAll("\\s+", "");
        if (!compact.isEmpty() && compact.length() % 2 == 0 && compact.chars().allMatch(AttestCommand::isHexDigit)) {
            return HexFormat.of().parseHex(compact);
        }
        return raw;
    }

    private static boolean isHexDigit(int c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }

    /**
     * What a verified quote must also satisfy. {@code mrtdAllowList == null}: no MRTD restriction;
     * a present list (even empty) must contain the TD's MRTD (SGX quotes, having no MRTD, fail it).
     */
    record Policy(Set<String> acceptedStatuses, boolean allowDebug, List<String> mrtdAllowList) {
        static final Policy DEFAULT = new Policy(Set.of(TcbStatus.UP_TO_DATE.jsonName()), false, null);

        static Policy parse(String json) {
            JsonObject o = new JsonObject(json);
            Set<String> statuses = DEFAULT.acceptedStatuses;
            if (o.containsKey("accepted_statuses")) {
                statuses = new LinkedHashSet<>();
                for (Object s : o.getJsonArray("accepted_statuses")) {
                    String name = (String) s;
                    if (!knownStatus(name)) throw new IllegalArgumentException("policy: unknown TCB status '" + name + "'");
                    statuses.add(name);
                }
            }
            boolean allowDebug = o.getBoolean("allow_debug", false);
            List<String> mrtd = null;
            if (o.containsKey("mrtd")) {
                mrtd = new ArrayList<>();
                for (Object h : o.getJsonArray("mrtd")) {
                    String hex = ((String) h).toLowerCase(Locale.ROOT);
                    if (hex.startsWith("0x")) hex = hex.substring(2);
                    if (hex.length() != 96 || !hex.chars().allMatch(AttestCommand::isHexDigit)) {
                        throw new IllegalArgumentException("policy: mrtd entries must be 48 bytes of hex, got '" + h + "'");
                    }
                    mrtd.add(hex);
                }
            }
            return new Policy(Set.copyOf(statuses), allowDebug, mrtd == null ? null : List.copyOf(mrtd));
        }

        private static boolean knownStatus(String name) {
            for (TcbStatus s : TcbStatus.values()) if (s.jsonName().equals(name)) return true;
            return false;
        }

        /** Reasons to reject; empty when accepted. */
        List<String> check(Quote quote, TcbStatus status) {
            List<String> reasons = new ArrayList<>();
            if (!acceptedStatuses.contains(status.jsonName())) {
                reasons.add("TCB status " + status.jsonName() + " not in accepted_statuses " + acceptedStatuses);
            }
            if (!allowDebug && debug(quote)) reasons.add("debug " + (quote.isTdx() ? "TD" : "enclave") + " not allowed");
            if (mrtdAllowList != null) {
                if (!(quote.body() instanceof TdReportBody td)) {
                    reasons.add("mrtd allow-list set but the quote is not TDX");
                } else if (!mrtdAllowList.contains(td.mrTdHex().toLowerCase(Locale.ROOT))) {
                    reasons.add("MRTD " + td.mrTdHex() + " not in the mrtd allow-list");
                }
            }
            return reasons;
        }
    }
}
