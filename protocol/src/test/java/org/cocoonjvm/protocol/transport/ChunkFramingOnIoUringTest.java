package org.cocoonjvm.protocol.transport;

import io.vertx.core.transport.Transport;
import org.junit.jupiter.api.condition.EnabledIf;

/** {@link ChunkFramingTest} on io_uring, the transport {@link NetTransport#AUTO} picks where the kernel has it. */
@EnabledIf(value = "ioUringAvailable", disabledReason = "this kernel or its seccomp profile offers no io_uring")
class ChunkFramingOnIoUringTest extends ChunkFramingTest {
    static boolean ioUringAvailable() {
        return Transport.IO_URING.available();
    }

    @Override
    NetTransport transport() {
        return NetTransport.IO_URING;
    }
}
