package org.cocoonjvm.protocol.transport;

import org.junit.jupiter.api.condition.EnabledIf;

/** {@link ChunkFramingTest} on io_uring, the other transport a node can run on ({@code --transport io_uring}). */
@EnabledIf(value = "ioUringAvailable", disabledReason = "this kernel or its seccomp profile offers no io_uring")
class ChunkFramingOnIoUringTest extends ChunkFramingTest {
    static boolean ioUringAvailable() {
        return NetTransport.IO_URING.available();
    }

    @Override
    NetTransport transport() {
        return NetTransport.IO_URING;
    }
}
