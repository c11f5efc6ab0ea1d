package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.junit.jupiter.api.Test;

/**
 * gateway/README's "Errors a client sees" is where frontend developers look for the statuses, types
 * and codes, and ErrorKind is where they are decided (audit Q, Q-9): a kind added or changed there
 * fails here until the table says so.
 */
class ErrorKindReadmeTest {
    @Test
    void everyErrorKind_hasItsRowInTheReadmesErrorTable() throws Exception {
        String readme = Files.readString(Path.of("README.md"));  // surefire runs in the module's directory
        for (ErrorKind kind : ErrorKind.values()) {
            assertThat(readme).as(kind.name()).contains("| " + kind.httpStatus + " | `" + kind.type + "` | `" + kind.code + "` |");
        }
    }
}
