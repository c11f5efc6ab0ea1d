package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.ton.ton4j.address.Address;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

class LocalChainTest {
    @TempDir Path dir;

    @Test
    void start_withoutNode_saysHowToGetIt() {
        assertThatThrownBy(() -> LocalChain.start(TestChain.EMULATOR, false, dir.toString()))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("node_missing"))
                .hasMessageContaining("Node.js not found");
    }

    @Test
    void start_withoutPackages_andNoInstallAllowed_saysToRunNpmCi() throws IOException {
        assumeTrue(
                LocalChain.isAvailable(TestChain.EMULATOR) || "true".equals(System.getenv("CI")),
                "node missing");
        Files.writeString(dir.resolve("server.js"), "");
        assertThatThrownBy(() -> LocalChain.start(dir, false))
                .isInstanceOfSatisfying(
                        ChainException.class,
                        e -> assertThat(e.code()).isEqualTo("emulator_not_installed"))
                .hasMessageContaining("npm ci");
    }

    @Test
    void start_inADirectoryWithoutTheEmulator_shouldThrow() {
        assumeTrue(
                LocalChain.isAvailable(TestChain.EMULATOR) || "true".equals(System.getenv("CI")),
                "node missing");
        assertThatThrownBy(() -> LocalChain.start(dir, false))
                .isInstanceOfSatisfying(
                        ChainException.class,
                        e -> assertThat(e.code()).isEqualTo("emulator_missing"));
    }

    @Test
    void servesTheSandboxConfigTimeAndToncenterErrors() {
        try (LocalChain chain = TestChain.startOrSkip()) {
            // The fee schedule read over HTTP is the one the pure tests pin.
            assertThat(FeeSchedule.read(chain.client())).isEqualTo(FeeScheduleTest.sandboxFees());

            long before = chain.now();
            assertThat(chain.advanceTime(Duration.ofHours(1)))
                    .isBetween(before + 3600, before + 3660);
            assertThat(chain.clock().instant().getEpochSecond())
                    .isGreaterThanOrEqualTo(before + 3600);

            Address nobody = Address.of("0:" + "cd".repeat(32));
            assertThat(chain.client().state(nobody)).isEqualTo("uninitialized");
            assertThat(chain.client().balance(nobody)).isZero();
            chain.faucet(nobody, TestChain.TON);
            assertThat(chain.client().balance(nobody)).isEqualTo(TestChain.TON);
            assertThatThrownBy(() -> chain.client().runGetMethod(nobody, "seqno"))
                    .isInstanceOfSatisfying(
                            ChainException.class,
                            e -> assertThat(e.code()).isEqualTo("node_error"));
            assertThatThrownBy(() -> chain.client().configParam(9999))
                    .hasMessageContaining("no config param 9999");
        }
    }
}
