package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
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

    /**
     * An API down at start no longer leaves the channels off chain until a restart (audit G, M1):
     * the gateway keeps paying on chain, says once why it can't yet, and each worker's channel
     * opens once the chain answers.
     */
    @Test
    void anUnreachableTonApi_keepsChannelsOnChain_sayingConnectionRefused_notSendItTon() throws Exception {
        String api = "http://127.0.0.1:" + freePort();
        DepositOptions options = new DepositOptions();
        new CommandLine(options).parseArgs("--ton-api", api);
        Logger root = (Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        root.addAppender(events);
        try {
            assertThat(options.channels(dir)).isNotNull();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (events.list.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
        } finally {
            root.detachAppender(events);
        }
        assertThat(events.list).singleElement().satisfies(e -> {
            assertThat(e.getThrowableProxy()).isNull();
            assertThat(e.getFormattedMessage())
                    .startsWith("the gateway's wallet " + options.walletAddress(dir).toNonBounceable() + " can't open payment"
                            + " channels yet: toncenter " + api + "/getAddressState: connection refused")
                    .doesNotContain("send it TON");
        });
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
