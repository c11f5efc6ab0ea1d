package org.cocoonjvm.launcher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;
import java.util.HexFormat;

/** Secrets: read from the operator's files (never the command line, which any local user can list), or generated. */
final class Keys {
    private static final SecureRandom RANDOM = new SecureRandom();

    private Keys() {}

    static String generate(String prefix) {
        byte[] bytes = new byte[24];
        RANDOM.nextBytes(bytes);
        return prefix + HexFormat.of().formatHex(bytes);
    }

    /**
     * The keys in {@code file}, one a line; blank lines and lines starting with {@code #} are
     * skipped, and whitespace around a key is not part of it.
     */
    static List<String> read(String flag, Path file) {
        try {
            return Files.readAllLines(file).stream().map(String::strip)
                    .filter(line -> !line.isEmpty() && !line.startsWith("#")).toList();
        } catch (IOException e) {
            throw new Cocoon.UsageException(flag + ": cannot read " + file + " (" + e.getClass().getSimpleName() + ")");
        }
    }
}
