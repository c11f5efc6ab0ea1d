package org.cocoonjvm.launcher;

import io.vertx.core.Vertx;
import org.cocoonjvm.protocol.transport.NetTransport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/** {@code --transport}: the socket layer a node runs on ({@link NetTransport}). */
final class TransportChoice {
    private static final Logger log = LoggerFactory.getLogger(TransportChoice.class);

    @Option(names = "--transport", defaultValue = "nio", converter = Converter.class,
            description = "Socket layer: nio or io_uring (Linux 5.x, not under Docker's default seccomp profile). "
                    + "Default: ${DEFAULT-VALUE}.")
    NetTransport transport;

    /** This node's Vert.x instance; says which transport it runs on. */
    Vertx vertx() {
        try {
            Vertx vertx = transport.vertx();
            log.info("network transport: {}", transport);
            return vertx;
        } catch (IllegalStateException e) {
            throw new Cocoon.UsageException(e.getMessage());
        }
    }

    static final class Converter implements ITypeConverter<NetTransport> {
        @Override
        public NetTransport convert(String value) {
            try {
                return NetTransport.parse(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
