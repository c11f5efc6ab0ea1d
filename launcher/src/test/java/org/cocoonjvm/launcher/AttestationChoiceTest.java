package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code --attestation}, {@code --policy}, {@code --dev-seed-file} as the gateway and worker commands read them. */
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
        assertThat(parse().node("test", Clock.systemUTC())).isEmpty();
    }

    @Test
    void dev_withSeedAndPolicy_buildsADevNode() throws Exception {
        Path seed = file("seed.hex", "ab".repeat(32) + "\n");
        Path policy = file("policy.json", "{\"allow_dev_tee\": true}");
        var node = parse("--attestation", "dev", "--dev-seed-file", seed.toString(), "--policy", policy.toString())
                .node("test", Clock.systemUTC());
        assertThat(node).hasValueSatisfying(n -> assertThat(n.tee()).isEqualTo("dev (not hardware-backed)"));
    }

    @Test
    void missingOrBadInputs_areUsageErrorsNamingTheOption() throws Exception {
        Path seed = file("seed.hex", "ab".repeat(32));
        Path policy = file("policy.json", "{\"allow_dev_tee\": true}");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--dev-seed-file", seed.toString()).node("t", Clock.systemUTC()))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("--policy");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--policy", policy.toString()).node("t", Clock.systemUTC()))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("--dev-seed-file");
        Path shortSeed = file("short.hex", "abcd");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--dev-seed-file", shortSeed.toString(), "--policy",
                policy.toString()).node("t", Clock.systemUTC())).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("32 bytes");
        Path typo = file("typo.json", "{\"allow_dev_te\": true}");
        assertThatThrownBy(() -> parse("--attestation", "dev", "--dev-seed-file", seed.toString(), "--policy",
                typo.toString()).node("t", Clock.systemUTC())).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("--policy");
        assertThatThrownBy(() -> parse("--attestation", "tdx", "--policy", policy.toString()).node("t", Clock.systemUTC()))
                .isInstanceOf(Cocoon.UsageException.class).hasMessageContaining("--collateral");
        assertThatThrownBy(() -> parse("--attestation", "sgx")).isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("none, dev or tdx");
    }
}
