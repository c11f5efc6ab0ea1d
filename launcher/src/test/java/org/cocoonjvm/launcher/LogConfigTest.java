package org.cocoonjvm.launcher;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.util.internal.logging.InternalLoggerFactory;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import org.junit.jupiter.api.Test;

/** What the launcher's logback.xml prints of library lines an operator reads at a stop. */
class LogConfigTest {
    /**
     * A connection accepted as a stopping gateway's last front leaves its port is reset by Netty
     * (audit F, finding 8). The line it logs, as Netty logs it, is one line: no stack trace.
     */
    @Test
    void aConnectionResetAsTheGatewayStops_isOneLine_namingTheException() {
        String printed = stderrOf(() -> InternalLoggerFactory.getInstance(ServerBootstrap.class)
                .warn("Failed to register an accepted channel: {}", "[id: 0x0c182ae6]", new IllegalStateException()));
        assertThat(printed.lines()).singleElement().asString()
                .contains("WARN").endsWith("Failed to register an accepted channel: [id: 0x0c182ae6]: java.lang.IllegalStateException");
        assertThat(stderrOf(() -> InternalLoggerFactory.getInstance(ServerBootstrap.class).warn("no exception")).lines())
                .singleElement().asString().endsWith(" - no exception");
    }

    private static String stderrOf(Runnable logging) {
        PrintStream before = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, UTF_8));
        try {
            logging.run();
        } finally {
            System.setErr(before);
        }
        return err.toString(UTF_8);
    }
}
