package org.cocoonjvm.launcher;

import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.dcap.QuoteCollateralSource;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.ratls.CommandGpuEvidence;
import org.cocoonjvm.attest.ratls.NodeConfig;
import org.cocoonjvm.attest.ratls.RaTlsIdentity;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.ratls.RaTlsVerifier;
import org.cocoonjvm.attest.tee.ConfigFsTsmQuoteSource;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.attest.tee.QuoteSourceException;
import picocli.CommandLine.Option;

/**
 * How a gateway or worker attests itself and checks its peers: {@code --attestation none|dev|tdx},
 * the peer policy ({@code --policy}: for a gateway the workers it accepts, for a worker the
 * gateways), what the mode needs ({@code --dev-seed-file}; for tdx the collateral source {@code --collateral},
 * {@code --pccs} or {@code --pcs}), and optionally GPU evidence for this node's certificate
 * ({@code --gpu-evidence-command}).
 */
final class AttestationChoice {
    enum Mode { NONE, DEV, TDX }

    @Option(names = "--attestation", defaultValue = "none", converter = ModeConverter.class,
            description = "none (plaintext, nothing verified), dev (software TEE, not hardware-backed; the peer policy "
                    + "must allow it) or tdx (configfs-tsm quotes). Default: ${DEFAULT-VALUE}, except for cocoon attest "
                    + "proxy, which checks a gateway and needs dev or tdx.")
    Mode mode;

    @Option(names = "--policy", description = "Peer policy JSON (attest-verifier/README.md), read over the strict "
            + "defaults: a gateway's lists the workers it accepts (image hashes, models), a worker's the gateways.")
    Path policy;

    @Option(names = "--dev-seed-file", description = "With --attestation dev: a file holding 32 bytes of hex; nodes "
            + "sharing it share the development root and so verify each other.")
    Path devSeedFile;

    @Option(names = "--collateral", description = "With --attestation tdx: collateral JSON (dcap-qvl QuoteCollateralV3) "
            + "for the peers' platform, used for every peer (offline; one of --collateral, --pccs, --pcs).")
    Path collateral;

    @Option(names = "--pccs", description = "With --attestation tdx: a PCCS base URL (e.g. https://pccs:8081; plain http "
            + "only on loopback); collateral is fetched per peer FMSPC and cached until its nextUpdate, 24 h at most.")
    URI pccs;

    @Option(names = "--pcs", description = "With --attestation tdx: fetch collateral per peer FMSPC from Intel PCS "
            + "(api.trustedservices.intel.com), cached until its nextUpdate, 24 h at most.")
    boolean pcs;

    @Option(names = "--gpu-evidence-command", description = "Attach NVIDIA GPU evidence to this node's RA-TLS certificate: "
            + "run by /bin/sh -c with the nonce (64 hex digits, bound to the certificate key) appended; must print "
            + "{\"evidence\": hex|base64, \"certificate_chain\": PEM} (launcher/README.md). Runs at every rotation.")
    String gpuEvidenceCommand;

    /** How long a GPU evidence command may take; nvtrust's SPDM round trip takes seconds. */
    static final Duration GPU_EVIDENCE_TIMEOUT = Duration.ofMinutes(2);

    static final class ModeConverter implements picocli.CommandLine.ITypeConverter<Mode> {
        @Override
        public Mode convert(String value) {
            try {
                return Mode.valueOf(value.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new picocli.CommandLine.TypeConversionException("expected none, dev or tdx, got '" + value + "'");
            }
        }
    }

    /**
     * This node's RA-TLS side; empty for {@code none}.
     *
     * @param config what its certificates say of this node ({@code role}, a worker's {@code engine});
     *               {@code peer_policy_sha256}, the SHA-256 of the {@code --policy} file, is added here,
     *               so that a peer can pin the policy this node holds its own peers to
     */
    Optional<RaTlsNode> node(String requester, Clock clock, NodeConfig config) throws IOException, QuoteSourceException {
        if (mode == Mode.NONE) {
            return Optional.empty();
        }
        byte[] policyFile = policyFile();
        Policy peers = parsePolicy(policyFile);
        NodeConfig claims = config.with(Map.of("peer_policy_sha256", HexFormat.of().formatHex(sha256(policyFile))));
        RaTlsIdentity.GpuEvidence gpu = gpuEvidenceCommand == null ? null
                : new CommandGpuEvidence(gpuEvidenceCommand, GPU_EVIDENCE_TIMEOUT);
        return Optional.of(switch (mode) {
            case DEV -> RaTlsNode.dev(DevTee.fromSeed(devSeed(), clock), peers, clock, gpu, claims);
            case TDX -> {
                CollateralSource peersCollateral = collateralSource(clock);
                yield RaTlsNode.tdx(ConfigFsTsmQuoteSource.open(ConfigFsTsmQuoteSource.DEFAULT_ROOT, requester),
                        peersCollateral, peers, clock, gpu, claims);
            }
            case NONE -> throw new AssertionError();
        });
    }

    /**
     * For a process outside any TEE that checks an attested peer (cocoon attest proxy): the mode's
     * roots and collateral, and the policy, without a certificate of its own.
     */
    RaTlsVerifier peerVerifier(Clock clock) throws IOException {
        if (mode == Mode.NONE) {
            throw new Cocoon.UsageException("--attestation dev or tdx is needed: there is nothing to check with none");
        }
        Policy policy = peerPolicy();
        if (mode == Mode.TDX) {
            return new RaTlsVerifier(AttestationVerifier.create(TrustAnchors.intel(), clock), collateralSource(clock), policy);
        }
        DevTee tee = DevTee.fromSeed(devSeed(), clock);
        return new RaTlsVerifier(AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(tee.root())), clock),
                quote -> tee.collateral(), policy);
    }

    /** Where a tdx node gets its peers' collateral: exactly one of --collateral, --pccs, --pcs. */
    CollateralSource collateralSource(Clock clock) throws IOException {
        int chosen = (collateral != null ? 1 : 0) + (pccs != null ? 1 : 0) + (pcs ? 1 : 0);
        if (chosen != 1) {
            throw new Cocoon.UsageException("--attestation tdx needs exactly one of --collateral FILE, --pccs URL, --pcs");
        }
        if (pccs != null) {
            if (!"https".equals(pccs.getScheme()) && !"http".equals(pccs.getScheme())) {
                throw new Cocoon.UsageException("--pccs must be an http(s) URL, got " + pccs);
            }
            // Collateral is signed, but over plain http anyone on the path can swap in older, still-valid collateral.
            if ("http".equals(pccs.getScheme()) && !isLoopback(pccs.getHost())) {
                throw new Cocoon.UsageException("--pccs must be https unless it is on loopback (localhost, 127.0.0.0/8, ::1), got "
                        + pccs);
            }
            return QuoteCollateralSource.pccs(pccs, clock);
        }
        if (pcs) {
            return QuoteCollateralSource.intelPcs(clock);
        }
        return CollateralSource.fixed(Collateral.parse(Files.readString(collateral)));
    }

    /** A loopback literal or {@code localhost}; other names are not resolved, since DNS would decide. */
    private static boolean isLoopback(String host) {
        if (host == null) {
            return false;
        }
        if ("localhost".equalsIgnoreCase(host)) {
            return true;
        }
        String literal = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        try {
            return InetAddress.ofLiteral(literal).isLoopbackAddress();
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    Policy peerPolicy() throws IOException {
        return parsePolicy(policyFile());
    }

    private byte[] policyFile() throws IOException {
        if (policy == null) {
            throw new Cocoon.UsageException("--attestation " + mode.name().toLowerCase(Locale.ROOT)
                    + " needs --policy FILE naming the peers to accept (the strict default accepts none)");
        }
        return Files.readAllBytes(policy);
    }

    private Policy parsePolicy(byte[] file) {
        try {
            return Policy.parse(new String(file, StandardCharsets.UTF_8), Policy.STRICT);
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--policy " + policy + ": " + e.getMessage());
        }
    }

    private static byte[] sha256(byte[] bytes) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private byte[] devSeed() throws IOException {
        if (devSeedFile == null) {
            throw new Cocoon.UsageException("--attestation dev needs --dev-seed-file FILE (32 bytes of hex, shared by the "
                    + "gateway and its workers)");
        }
        String hex = Files.readString(devSeedFile, StandardCharsets.US_ASCII).strip();
        try {
            byte[] seed = HexFormat.of().parseHex(hex);
            if (seed.length != 32) {
                throw new IllegalArgumentException(seed.length + " bytes");
            }
            return seed;
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--dev-seed-file must hold 32 bytes of hex: " + e.getMessage());
        }
    }
}
