package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import org.junit.jupiter.api.Test;

/**
 * Audit S, S-1: a start waiting for a stopping gateway's lease held its port all the while, and
 * the kernel took clients' connections that nothing answered until the hold ended, then reset
 * them. Let go for the wait, the port refuses them at once; held again, it is this start's.
 */
class PortsTest {
    private static final String HOST = "127.0.0.1";

    @Test
    void aPortLetGo_refusesConnections_andIsHeldAgainAfter() throws Exception {
        int port = freePort();
        try (Ports ports = Ports.hold(HOST, port)) {
            ports.letGo();
            assertThatThrownBy(() -> connect(port)).isInstanceOf(ConnectException.class);

            ports.holdAgain();
            assertThatThrownBy(() -> new ServerSocket(port, 50, java.net.InetAddress.getByName(HOST)).close())
                    .as("held again: no one else binds it").isInstanceOf(IOException.class);
        }
    }

    @Test
    void aPortTakenWhileLetGo_failsTheStartNamingIt() throws Exception {
        int port = freePort();
        try (Ports ports = Ports.hold(HOST, port)) {
            ports.letGo();
            try (ServerSocket other = new ServerSocket(port, 50, java.net.InetAddress.getByName(HOST))) {
                assertThatThrownBy(ports::holdAgain).isInstanceOf(Cocoon.StartFailure.class)
                        .hasMessage("port " + port + " on " + HOST + " is in use");
            }
        }
    }

    private static void connect(int port) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(HOST, port), 2_000);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }
}
