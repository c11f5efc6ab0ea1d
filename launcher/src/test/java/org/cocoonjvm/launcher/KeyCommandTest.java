package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code cocoon key new}: a key for its client on stdout, and a line for the keys file that holds only its digest. */
class KeyCommandTest {
    @TempDir
    Path dir;

    @Test
    void keyNew_printsTheKey_andItsLineOnStderr_whichTheGatewayReadsAsThatKey() {
        CliRun run = CliRun.cocoon("key", "new", "--account", "acme", "--tpm", "50000");
        assertThat(run.exit()).isZero();
        String key = run.out();
        assertThat(key).startsWith("sk-cocoon-").doesNotContain("\n");
        String line = run.err().lines().toList().getLast();
        assertThat(line).isEqualTo("sha256:" + BearerKeys.hash(key) + " acme tpm=50000");
        ApiKey parsed = ClientKeys.byDigest(List.of(line), new KeyLimits(60, 0, 4)).get(BearerKeys.hash(key));
        assertThat(parsed.accountId()).isEqualTo("acme");
        assertThat(parsed.limits()).as("what the line leaves out is the gateway's").isEqualTo(new KeyLimits(60, 50_000, 4));
        assertThat(CliRun.cocoon("key", "new").out()).as("a new key each time").isNotEqualTo(key);
    }

    @Test
    void keyNew_appendsToTheKeysFile_creatingItForItsOwnerOnly_andNeverGluesLines() throws Exception {
        Path created = dir.resolve("new-keys");
        CliRun first = CliRun.cocoon("key", "new", "--append-to", created.toString());
        assertThat(first.err()).startsWith("cocoon: added key-").endsWith(" to " + created);
        assertThat(Files.getPosixFilePermissions(created)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        assertThat(Files.readAllLines(created)).containsExactly("sha256:" + BearerKeys.hash(first.out()));

        Path handWritten = Files.writeString(dir.resolve("keys"), "sk-alice");  // no newline at its end
        CliRun second = CliRun.cocoon("key", "new", "--append-to", handWritten.toString(), "--max-concurrent", "2");
        assertThat(Files.readAllLines(handWritten)).containsExactly("sk-alice",
                "sha256:" + BearerKeys.hash(second.out()) + " max-concurrent=2");
    }

    @Test
    void keyNew_badAccountOrLimit_isOneUsageLine_andWritesNothing() throws Exception {
        Path file = dir.resolve("keys");
        CliRun badAccount = CliRun.cocoon("key", "new", "--account", "a/b", "--append-to", file.toString());
        assertThat(badAccount.exit()).isEqualTo(2);
        assertThat(badAccount.err()).startsWith("cocoon: the account of key key-").contains("letters, digits").doesNotContain("\n");
        CliRun negative = CliRun.cocoon("key", "new", "--rpm", "-5", "--append-to", file.toString());
        assertThat(negative.exit()).isEqualTo(2);
        assertThat(negative.err()).startsWith("cocoon: --rpm").contains("-5").doesNotContain("\n");
        assertThat(badAccount.out() + negative.out()).as("no key handed out").isEmpty();
        assertThat(file).doesNotExist();
    }
}
