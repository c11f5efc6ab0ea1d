package org.cocoonjvm.launcher;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Optional;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.tee.ConfigFsTsmQuoteSource;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.attest.tee.QuoteSourceException;
import picocli.CommandLine.Option;

/**
 * How a gateway or worker attests itself and checks its peers: {@code --attestation none|dev|tdx},
 * the peer policy ({@code --policy}: for a gateway the workers it accepts, for a worker the
 * gateways), and what the mode needs ({@code --dev-seed-file}, {@code --collateral}).
 */
final class AttestationChoice {
    enum Mode { NONE, DEV, TDX }

    @Option(names = "--attestation", defaultValue = "none", converter = ModeConverter.class,
            description = "none (plaintext, nothing verified), dev (software TEE, not hardware-backed; the peer policy "
                    + "must allow it) or tdx (configfs-tsm quotes). Default: ${DEFAULT-VALUE}.")
    Mode mode;

    @Option(names = "--policy", description = "Peer policy JSON (attest-verifier/README.md), read over the strict "
            + "defaults: a gateway's lists the workers it accepts (image hashes, models), a worker's the gateways.")
    Path policy;

    @Option(names = "--dev-seed-file", description = "With --attestation dev: a file holding 32 bytes of hex; nodes "
            + "sharing it share the development root and so verify each other.")
    Path devSeedFile;

    @Option(names = "--collateral", description = "With --attestation tdx: collateral JSON (dcap-qvl QuoteCollateralV3) "
            + "for the peers' platform, until a PCS/PCCS source is wired in.")
    Path collateral;

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

    /** This node's RA-TLS side; empty for {@code none}. */
    Optional<RaTlsNode> node(String requester, Clock clock) throws IOException, QuoteSourceException {
        if (mode == Mode.NONE) {
            return Optional.empty();
        }
        Policy peers = peerPolicy();
        return Optional.of(switch (mode) {
            case DEV -> RaTlsNode.dev(DevTee.fromSeed(devSeed(), clock), peers, clock);
            case TDX -> {
                if (collateral == null) {
                    throw new Cocoon.UsageException("--attestation tdx needs --collateral FILE");
                }
                Collateral c = Collateral.parse(Files.readString(collateral));
                yield RaTlsNode.tdx(ConfigFsTsmQuoteSource.open(ConfigFsTsmQuoteSource.DEFAULT_ROOT, requester),
                        CollateralSource.fixed(c), peers, clock);
            }
            case NONE -> throw new AssertionError();
        });
    }

    Policy peerPolicy() throws IOException {
        if (policy == null) {
            throw new Cocoon.UsageException("--attestation " + mode.name().toLowerCase(Locale.ROOT)
                    + " needs --policy FILE naming the peers to accept (the strict default accepts none)");
        }
        try {
            return Policy.parse(Files.readString(policy), Policy.STRICT);
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--policy " + policy + ": " + e.getMessage());
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
