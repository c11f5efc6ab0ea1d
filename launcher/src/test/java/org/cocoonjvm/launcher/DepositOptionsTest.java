package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;

/**
 * The gateway's start check of its wallet when the chain's API can't answer: the channels stay
 * off chain, and the log names what failed rather than asking for TON (audit G, M1).
 */
class DepositOptionsTest {
    @TempDir
    Path dir;

    @Test
    void anUnreachableTonApi_keepsChannelsOffChain_sayingConnectionRefused_notSendItTon() throws IOException {
        String api = "http://127.0.0.1:" + freePort();
        DepositOptions options = new DepositOptions();
        new CommandLine(options).parseArgs("--ton-api", api);
        Logger root = (Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        root.addAppender(events);
        try {
            assertThat(options.channels(dir)).isNull();
        } finally {
            root.detachAppender(events);
        }
        assertThat(events.list).singleElement().satisfies(e -> {
            assertThat(e.getThrowableProxy()).isNull();
            assertThat(e.getFormattedMessage())
                    .startsWith("the gateway's wallet " + options.walletAddress(dir).toNonBounceable() + " could not be checked")
                    .endsWith(": toncenter " + api + "/getAddressState: connection refused")
                    .doesNotContain("send it TON");
        });
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
