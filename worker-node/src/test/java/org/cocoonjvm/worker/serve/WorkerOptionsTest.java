package org.cocoonjvm.worker.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.net.SocketAddress;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.junit.jupiter.api.Test;

class WorkerOptionsTest {
    private static final SocketAddress GATEWAY = SocketAddress.inetSocketAddress(9090, "127.0.0.1");

    private static WorkerOptions options(String host, SocketAddress gateway, String advertise) {
        return new WorkerOptions("w", host, 0, null, gateway, SchedulerOptions.DEFAULTS, 0, WorkerPaymentOptions.IN_MEMORY,
                advertise);
    }

    @Test
    void theBoundAddress_isAnnounced_unlessAnotherIsAdvertised() {
        assertThat(options("127.0.0.1", GATEWAY, null).announcedAuthority(41000)).isEqualTo("127.0.0.1:41000");
        assertThat(options("0.0.0.0", GATEWAY, "gpu-7.example").announcedAuthority(41000)).isEqualTo("gpu-7.example:41000");
        assertThat(options("0.0.0.0", GATEWAY, "203.0.113.9:443").announcedAuthority(41000)).isEqualTo("203.0.113.9:443");
    }

    @Test
    void aWildcardBind_withAGatewayToTell_needsAnAdvertisedAddress() {
        assertThatThrownBy(() -> options("0.0.0.0", GATEWAY, null)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--advertise");
        assertThatThrownBy(() -> options("::", GATEWAY, null)).isInstanceOf(IllegalArgumentException.class);
        assertThat(options("0.0.0.0", null, null).announcedAuthority(8000)).as("standalone: nobody to tell")
                .isEqualTo("0.0.0.0:8000");
    }

    @Test
    void aMalformedAdvertisedAddress_isRefused() {
        assertThatThrownBy(() -> options("127.0.0.1", GATEWAY, "host:notaport")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("host or host:port");
        assertThatThrownBy(() -> options("127.0.0.1", GATEWAY, ":28133")).as("a port and no host")
                .isInstanceOf(IllegalArgumentException.class);
    }
}
