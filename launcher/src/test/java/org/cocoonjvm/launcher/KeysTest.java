package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Keys read from files: one a line, as {@code --api-keys-file} and {@code --admin-key-file} take them. */
class KeysTest {
    @TempDir
    Path dir;

    @Test
    void read_takesOneKeyALine_skippingBlankLinesAndComments() throws Exception {
        Path file = Files.writeString(dir.resolve("keys"), "# clients\nsk-alice\n\n  sk-bob \r\n#sk-revoked\n");
        assertThat(Keys.read("--api-keys-file", file)).containsExactly("sk-alice", "sk-bob");
    }

    @Test
    void read_aMissingFile_isOneLineNamingTheFlagAndFile() {
        Path missing = dir.resolve("absent");
        assertThatThrownBy(() -> Keys.read("--api-keys-file", missing))
                .isInstanceOf(Cocoon.UsageException.class)
                .hasMessage("--api-keys-file: cannot read " + missing + " (NoSuchFileException)");
    }
}
