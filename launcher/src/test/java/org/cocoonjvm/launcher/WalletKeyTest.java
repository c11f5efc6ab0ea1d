package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WalletKeyTest {
    @TempDir
    Path dir;

    @Test
    void createdOnFirstStart_ownerOnly_andTheSameWalletAfterwards() throws Exception {
        Path file = dir.resolve("data").resolve("wallet.key");

        String first = ChainWallet.addressOf(WalletKey.loadOrCreate(file)).toNonBounceable();

        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
        assertThat(Files.readString(file).strip()).matches("[0-9a-f]{64}");
        assertThat(ChainWallet.addressOf(WalletKey.loadOrCreate(file)).toNonBounceable()).isEqualTo(first);
    }

    @Test
    void anythingButA32ByteHexSeed_isRefusedByName() throws Exception {
        Path file = dir.resolve("wallet.key");
        Files.writeString(file, "abcd\n");

        assertThatThrownBy(() -> WalletKey.loadOrCreate(file))
                .isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("--wallet-key " + file)
                .hasMessageContaining("64 hex digits");
    }

    @Test
    void theDepositOptionsRejectANonPositivePollInterval() {
        DepositOptions options = new DepositOptions();
        options.pollSeconds = 0;

        assertThatThrownBy(options::options).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("poll interval must be positive");
    }
}
