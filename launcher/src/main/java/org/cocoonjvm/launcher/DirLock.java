package org.cocoonjvm.launcher;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * One process per state directory, held as an OS file lock on a file there until closed or the
 * process ends, so a crashed process leaves nothing to clean up. {@code cocoon worker} holds its
 * {@code --payment-dir} ({@link #WORKER}): two workers on one payment key would overwrite each
 * other's channel states and token counts (audit P, P-6). {@code cocoon gateway} holds its
 * {@code --data-dir} ({@link #GATEWAY}): two gateways there would overwrite each other's pending
 * settlements journal; and since a lock dies with its process, a start that holds it knows that
 * any earlier holder of the directory is gone (its {@link #id() id} on the ledger's lease: review U,
 * U-2).
 */
final class DirLock implements AutoCloseable {
    /** Which command's directory: what the refusal names. */
    record Kind(String flag, String fileName, String command, String why) {
    }

    static final Kind WORKER = new Kind("--payment-dir", "worker.lock", "cocoon worker",
            "two workers on one payment key would overwrite each other's channel states; give each worker a --payment-dir of its own");
    static final Kind GATEWAY = new Kind("--data-dir", "gateway.lock", "cocoon gateway",
            "two gateways on one data dir would overwrite each other's pending settlements, cordons and known models; let "
                    + "the one running there exit first, or give each gateway a --data-dir of its own");
    /** The file that names a directory for good: created once, under the lock, never rewritten. */
    static final String ID_FILE = "data-dir-id";

    private final FileLock lock;
    private final Path dir;

    private DirLock(FileLock lock, Path dir) {
        this.lock = lock;
        this.dir = dir;
    }

    /** @throws Cocoon.StartFailure when another process holds the directory, or it is a file */
    static DirLock hold(Path dir, Kind kind) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new Cocoon.StartFailure(kind.flag() + " " + dir + " is not a directory", null);
        }
        Files.createDirectories(dir);
        Path file = dir.resolve(kind.fileName());
        FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = channel.tryLock();
        } catch (OverlappingFileLockException heldHere) {
            lock = null;  // by this JVM: a node run in-process before this one is still running
        }
        if (lock == null) {
            channel.close();
            throw new Cocoon.StartFailure(kind.flag() + " " + dir + " is in use by another " + kind.command() + " (it holds "
                    + file + "): " + kind.why(), null);
        }
        return new DirLock(lock, dir);
    }

    /**
     * The directory's random id, created on first use: what the ledger's lease records of its
     * holder's data dir. Copied with the directory (a restored backup, a cloned volume), a copy
     * shares it: remove the copy's {@value #ID_FILE} before starting it beside the original.
     */
    String id() throws IOException {
        Path file = dir.resolve(ID_FILE);
        if (!Files.exists(file)) {
            byte[] random = new byte[16];
            new SecureRandom().nextBytes(random);
            Path fresh = Files.writeString(Files.createTempFile(dir, ID_FILE, ".tmp"), HexFormat.of().formatHex(random) + "\n");
            try {
                // Whole or not at all: a crash never leaves an empty or torn id behind.
                Files.move(fresh, file, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(fresh);
            }
        }
        String id = Files.readString(file).strip();
        if (!id.matches("[0-9a-zA-Z-]{1,64}")) {
            throw new Cocoon.StartFailure(file + " does not hold a data dir id (1 to 64 letters, digits or '-'; remove it "
                    + "for a new one): " + (id.length() > 80 ? id.substring(0, 80) + "…" : id), null);
        }
        return id;
    }

    @Override
    public void close() throws IOException {
        lock.acquiredBy().close();  // closing the channel releases the lock
    }
}
