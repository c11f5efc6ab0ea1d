package org.cocoonjvm.launcher;

import java.io.IOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;

/**
 * A node's listening ports, bound by the launcher before the node starts. A process that cannot
 * serve must find out before it takes anything shared: a gateway holds its ports while it takes
 * its ledger lease, so a second start beside a running gateway fails on the port and never fences
 * the gateway that serves. Closing hands the ports to the node, which binds them at once.
 */
final class Ports implements AutoCloseable {
    private final String host;
    private final int[] ports;
    private final List<ServerSocket> held;

    private Ports(String host, int[] ports, List<ServerSocket> held) {
        this.host = host;
        this.ports = ports;
        this.held = held;
    }

    /** Refuses a port outside 0..65535 (0: any free port), naming the flag. */
    static void checkRange(String flag, int port) {
        Cocoon.UsageException.checkRange(flag, port, 0, 65535);
    }

    /**
     * Binds each of {@code ports} on {@code host} (0s are skipped: a free port always exists).
     *
     * @throws Cocoon.StartFailure naming the port that could not be bound, and why
     */
    static Ports hold(String host, int... ports) {
        Ports held = new Ports(host, ports, new ArrayList<>());
        held.bind();
        return held;
    }

    private void bind() {
        for (int port : ports) {
            if (port == 0) {
                continue;
            }
            InetSocketAddress address = new InetSocketAddress(host, port);
            try {
                if (address.isUnresolved()) {
                    throw new IOException("no such host");
                }
                ServerSocket socket = new ServerSocket();
                held.add(socket);
                socket.bind(address);
            } catch (IOException e) {
                close();
                throw new Cocoon.StartFailure(describe(host, port, e), e);
            }
        }
    }

    /**
     * Lets go of the ports for a long wait (a stopping gateway's lease): held, they take
     * connections into the backlog that nothing answers, and a client hangs until it is reset,
     * where a port let go refuses it at once, which clients and load balancers retry elsewhere.
     * {@link #holdAgain} takes them back.
     */
    void letGo() {
        close();
    }

    /** After {@link #letGo}: binds the ports again, or fails naming the one another process took meanwhile. */
    void holdAgain() {
        if (!held.isEmpty() && held.stream().allMatch(ServerSocket::isClosed)) {
            held.clear();
            bind();
        }
    }

    private static String describe(String host, int port, Exception e) {
        if (e instanceof BindException && "Address already in use".equals(e.getMessage())) {
            return "port " + port + " on " + host + " is in use";
        }
        return "cannot listen on " + host + ":" + port + ": " + e.getMessage();
    }

    @Override
    public void close() {
        for (ServerSocket socket : held) {
            try {
                socket.close();
            } catch (IOException e) {
                // a listening socket never accepted anything: nothing to lose
            }
        }
    }
}
