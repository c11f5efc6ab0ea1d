package org.cocoonjvm.launcher;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;

/**
 * Files a long command writes only at its end ({@code load --json}, {@code bench gateway --out}):
 * checked before it starts, so that a path it cannot write is a usage error in one line (exit 2)
 * instead of a failure found after the whole run, and written so that a late failure loses neither
 * the run's result nor its output (audit P, P-2).
 */
final class OutputPaths {
    private OutputPaths() {}

    /**
     * Refuses, as a usage error naming {@code option}, a {@code file} that could not be written now:
     * a folder, one under a missing folder or under a file, or one this user may not write. The
     * check writes nothing: an existing file is opened to append and closed as it was, and a new one
     * is created and removed again.
     */
    static void requireWritableFile(String option, Path file) {
        String what = option + " " + file;
        if (Files.isDirectory(file)) {
            throw new Cocoon.UsageException(what + " is a directory; name a file");
        }
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            throw new Cocoon.UsageException(what + " cannot be written: "
                    + (Files.exists(parent) ? parent + " is not a directory" : "no such directory " + parent));
        }
        try {
            if (Files.exists(file)) {
                Files.newByteChannel(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND).close();
            } else {
                Files.createFile(file);
                Files.delete(file);
            }
        } catch (IOException e) {
            throw new Cocoon.UsageException(what + " cannot be written: " + reason(e));
        }
    }

    /**
     * Refuses, as a usage error naming {@code option}, a {@code dir} that cannot be made or written
     * now. Missing folders are created, as the command would at its end.
     */
    static void requireWritableDirectory(String option, Path dir) {
        String what = option + " " + dir;
        try {
            Files.createDirectories(dir);
            Files.delete(Files.createTempFile(dir, ".cocoon-check-", ".tmp"));
        } catch (IOException e) {
            throw new Cocoon.UsageException(what + " cannot be written: " + reason(e));
        }
    }

    /**
     * Writes {@code text} to {@code file}; when that fails (the disk filled, the folder went away
     * since {@link #requireWritableFile}), says so on {@code err} and keeps the text in a file of the
     * temporary folder instead, naming it. Never throws: the caller's exit code stays the run's.
     *
     * @return where the text is, or null when it could be written nowhere
     */
    static Path writeOrKeep(String option, Path file, String text, PrintWriter err) {
        try {
            Files.writeString(file, text);
            return file;
        } catch (IOException e) {
            String failed = "cocoon: " + option + " " + file + " could not be written (" + reason(e) + ")";
            String name = file.getFileName() == null ? "cocoon" : file.getFileName().toString().replaceFirst("\\.json$", "");
            try {
                Path kept = Files.createTempFile(name + "-", ".json");
                Files.writeString(kept, text);
                err.println(failed + "; it is in " + kept + " instead");
                return kept;
            } catch (IOException | RuntimeException again) {
                err.println(failed + ", nor in the temporary folder (" + reason(again) + "); it is lost");
                return null;
            } finally {
                err.flush();
            }
        }
    }

    /** What went wrong, without the path the caller's line names already. */
    private static String reason(Exception e) {
        return switch (e) {
            case NoSuchFileException f -> "no such file or directory" + (f.getFile() == null ? "" : " " + f.getFile());
            case AccessDeniedException f -> "permission denied";
            case FileSystemException f when f.getReason() != null -> f.getReason().toLowerCase(Locale.ROOT);
            default -> String.valueOf(e.getMessage());
        };
    }
}
