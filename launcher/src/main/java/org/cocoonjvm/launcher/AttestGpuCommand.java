package org.cocoonjvm.launcher;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import org.cocoonjvm.attest.nvidia.GpuAttestation;
import org.cocoonjvm.attest.nvidia.GpuVerificationException;
import org.cocoonjvm.attest.nvidia.MeasurementComparison;
import org.cocoonjvm.attest.nvidia.NvidiaGpuVerifier;
import org.cocoonjvm.attest.nvidia.VerifiedGpuEvidence;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code cocoon attest verify-gpu}: NVIDIA Hopper GPU evidence against the pinned NVIDIA roots at a
 * fixed time, then (with two RIMs) the measurement comparison. Exit codes as {@code attest verify}.
 */
@Command(name = "verify-gpu", mixinStandardHelpOptions = true,
        description = "Verify NVIDIA Hopper GPU evidence (SPDM measurements) and, with --rim, compare its "
                + "measurements with the driver and VBIOS RIMs. Exit 0: accepted; 1: rejected; 2: usage error.")
final class AttestGpuCommand implements Callable<Integer> {
    /** The only architecture the verifier knows; PPCIe entries name theirs. */
    static final String HOPPER = "HOPPER";

    @Spec CommandSpec spec;

    @Option(names = "--evidence", required = true,
            description = "SPDM request‖response as hex text or binary, or a PPCIe evidence JSON array "
                    + "(entries with base64 'evidence' and base64 PEM 'certificate').")
    Path evidenceFile;
    @Option(names = "--cert-chain", description = "Device certificate chain, PEM, leaf first (not used with PPCIe JSON).")
    Path chainFile;
    @Option(names = "--rim", description = "A RIM (SWID tag XML); give the driver and the VBIOS RIM, in any order.")
    List<Path> rimFiles = new ArrayList<>();
    @Option(names = "--evidence-only", description = "Accept without RIMs (measurements are then not checked).")
    boolean evidenceOnly;
    @Option(names = "--nonce", required = true, description = "The 32-byte nonce the GPU was asked to sign, hex.")
    String nonceHex;
    @Option(names = "--at", required = true, description = "Verification time, ISO-8601 (e.g. 2024-06-01T00:00:00Z).")
    String at;
    @Option(names = "--json", description = "Print one JSON object (the only output format so far).")
    boolean json;

    /** One GPU's evidence and its device chain. */
    record Gpu(String arch, byte[] evidence, byte[] chainPem) {}

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Instant instant;
        byte[] nonce;
        List<Gpu> gpus;
        List<byte[]> rims = new ArrayList<>();
        try {
            instant = Instant.parse(at);
        } catch (DateTimeParseException e) {
            return usage(out, "--at must be an ISO-8601 instant such as 2024-06-01T00:00:00Z, got '" + at + "'");
        }
        try {
            nonce = HexFormat.of().parseHex(nonceHex.startsWith("0x") ? nonceHex.substring(2) : nonceHex);
        } catch (IllegalArgumentException e) {
            return usage(out, "--nonce must be hex: " + e.getMessage());
        }
        if (nonce.length != 32) return usage(out, "--nonce must be 32 bytes, got " + nonce.length);
        if (rimFiles.size() != 0 && rimFiles.size() != 2) {
            return usage(out, "--rim must be given twice (driver and VBIOS RIM), got " + rimFiles.size());
        }
        if (rimFiles.isEmpty() && !evidenceOnly) {
            return usage(out, "give the driver and VBIOS RIMs with --rim, or --evidence-only to skip the measurement check");
        }
        try {
            gpus = readGpus(evidenceFile, chainFile);
            for (Path rim : rimFiles) rims.add(Files.readAllBytes(rim));
        } catch (IOException e) {
            return usage(out, "cannot read " + e.getMessage());
        } catch (IllegalArgumentException | DecodeException | ClassCastException e) {
            return usage(out, e.getMessage());
        }
        JsonObject result = verify(gpus, nonce, rims, Clock.fixed(instant, ZoneOffset.UTC));
        out.println(result.encode());
        out.flush();
        return result.getBoolean("accepted") ? 0 : AttestCommand.REJECTED;
    }

    /** A single GPU gives a flat object; a PPCIe file gives {@code {"accepted", "gpus": [...]}}. */
    static JsonObject verify(List<Gpu> gpus, byte[] nonce, List<byte[]> rims, Clock clock) {
        NvidiaGpuVerifier verifier = NvidiaGpuVerifier.create(clock);
        if (gpus.size() == 1) return verifyOne(verifier, gpus.get(0), nonce, rims);
        JsonArray results = new JsonArray();
        boolean all = true;
        for (Gpu gpu : gpus) {
            JsonObject r = verifyOne(verifier, gpu, nonce, rims);
            all &= r.getBoolean("accepted");
            results.add(r);
        }
        return new JsonObject().put("accepted", all).put("gpus", results);
    }

    private static JsonObject verifyOne(NvidiaGpuVerifier verifier, Gpu gpu, byte[] nonce, List<byte[]> rims) {
        JsonObject r = new JsonObject().put("accepted", false);
        if (!HOPPER.equals(gpu.arch())) {
            return error(r, GpuVerificationException.Reason.UNSUPPORTED_ARCHITECTURE.code(),
                    "architecture " + gpu.arch() + " is not " + HOPPER);
        }
        try {
            VerifiedGpuEvidence evidence = verifier.evidenceVerifier().verify(gpu.evidence(), gpu.chainPem(), nonce);
            r.put("driver_version", evidence.driverVersion()).put("vbios_version", evidence.vbiosVersion())
                    .put("fwid", evidence.certificateFwidHex());
            if (rims.isEmpty()) {
                r.put("measurements", new JsonObject().put("checked", false));
                return r.put("accepted", true);
            }
            GpuAttestation a = verifier.appraise(evidence, rims.get(0), rims.get(1));
            r.put("driver_rim", a.driverRim().colloquialVersion()).put("vbios_rim", a.vbiosRim().colloquialVersion());
            r.put("measurements", measurements(a.measurements()));
            if (!a.allMeasurementsMatch()) {
                return error(r, GpuVerificationException.Reason.MEASUREMENT_MISMATCH.code(),
                        a.measurements().mismatches().size() + " active golden measurements differ");
            }
            return r.put("accepted", true);
        } catch (GpuVerificationException e) {
            return error(r, e.code(), e.getMessage());
        }
    }

    static JsonObject measurements(MeasurementComparison m) {
        JsonArray mismatches = new JsonArray();
        for (MeasurementComparison.Mismatch x : m.mismatches()) {
            mismatches.add(new JsonObject().put("index", x.index()).put("runtime", x.runtimeHex())
                    .put("golden", new JsonArray(x.goldenHex())));
        }
        return new JsonObject().put("checked", true).put("compared", m.compared().size())
                .put("skipped", new JsonArray(m.skipped())).put("mismatches", mismatches);
    }

    private static JsonObject error(JsonObject r, String code, String message) {
        return r.put("accepted", false).put("error", new JsonObject().put("code", code).put("message", message));
    }

    /** Hex or binary evidence with a separate chain, or a PPCIe JSON array carrying both per GPU. */
    static List<Gpu> readGpus(Path evidenceFile, Path chainFile) throws IOException {
        String text = new String(Files.readAllBytes(evidenceFile), StandardCharsets.ISO_8859_1).strip();
        if (text.startsWith("[")) {
            if (chainFile != null) throw new IllegalArgumentException("--cert-chain is not used with PPCIe JSON evidence");
            JsonArray entries = new JsonArray(text);
            if (entries.isEmpty()) throw new IllegalArgumentException("PPCIe evidence has no entries");
            List<Gpu> gpus = new ArrayList<>();
            for (int i = 0; i < entries.size(); i++) {
                JsonObject e = entries.getJsonObject(i);
                gpus.add(new Gpu(required(e, "arch", i), base64(e, "evidence", i), base64(e, "certificate", i)));
            }
            return gpus;
        }
        if (chainFile == null) throw new IllegalArgumentException("--cert-chain is required for single-GPU evidence");
        return List.of(new Gpu(HOPPER, AttestCommand.readQuote(evidenceFile), Files.readAllBytes(chainFile)));
    }

    private static String required(JsonObject entry, String field, int i) {
        String v = entry.getString(field);
        if (v == null) throw new IllegalArgumentException("PPCIe entry " + i + " has no '" + field + "'");
        return v;
    }

    private static byte[] base64(JsonObject entry, String field, int i) {
        try {
            return Base64.getDecoder().decode(required(entry, field, i));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("PPCIe entry " + i + " '" + field + "' is not base64: " + e.getMessage());
        }
    }

    private static int usage(PrintWriter out, String message) {
        out.println(new JsonObject().put("accepted", false)
                .put("error", new JsonObject().put("code", "usage").put("message", message)).encode());
        out.flush();
        return AttestCommand.USAGE;
    }
}
