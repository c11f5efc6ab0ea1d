package org.cocoonjvm.worker.kernels;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** {@code -Dcocoon.kernels}: what an operator's choice of kernels gives on a machine without a GPU. */
class KernelChoiceTest {

    @Test
    void cudaForcedWithoutAGpu_isAKernelException_theLauncherSaysInOneLine() {
        assumeFalse(Files.exists(Path.of("/dev/nvidiactl")), "a GPU is visible here");
        assertThatThrownBy(() -> KernelLibrary.load("cuda"))
                .isInstanceOf(KernelException.class)
                .hasMessageContaining("-Dcocoon.kernels=cuda, but this build has no CUDA library or no GPU is visible");
    }

    @Test
    void cpuForced_loadsTheCpuBuild() {
        assertThat(KernelLibrary.load("cpu").backend()).startsWith("cpu");
    }
}
