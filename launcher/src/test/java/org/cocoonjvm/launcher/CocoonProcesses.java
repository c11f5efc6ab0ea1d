package org.cocoonjvm.launcher;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code cocoon} commands run from the packaged jar as operators run them, each in its own JVM,
 * its stderr appended to a log file and its stdout left to the test (ready lines); whatever is
 * still running at {@link #close} is killed.
 */
final class CocoonProcesses implements AutoCloseable {
    private final List<Process> started = new ArrayList<>();

    Process start(Path log, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", System.getProperty("cocoon.jar")));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        started.add(p);
        return p;
    }

    @Override
    public void close() {
        started.forEach(Process::destroyForcibly);
    }
}
