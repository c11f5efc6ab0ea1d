package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.cocoonjvm.protocol.transport.NetTransport;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code --transport} as the node commands read it. */
class TransportChoiceTest {
    private static TransportChoice parse(String... args) {
        TransportChoice choice = new TransportChoice();
        new CommandLine(choice).parseArgs(args);
        return choice;
    }

    @Test
    void nio_isTheDefault() {
        assertThat(parse().transport).isEqualTo(NetTransport.NIO);
    }

    @Test
    void ioUring_isAccepted_inEitherSpelling() {
        assertThat(parse("--transport", "io_uring").transport).isEqualTo(NetTransport.IO_URING);
        assertThat(parse("--transport", "IO-URING").transport).isEqualTo(NetTransport.IO_URING);
    }

    @Test
    void anUnknownTransport_isRefused_namingTheChoices() {
        assertThatThrownBy(() -> parse("--transport", "epoll"))
                .isInstanceOf(CommandLine.ParameterException.class)
                .hasMessageContaining("unknown transport 'epoll': use nio or io_uring");
    }
}
