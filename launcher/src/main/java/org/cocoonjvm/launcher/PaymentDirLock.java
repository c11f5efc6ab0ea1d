package org.cocoonjvm.launcher;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * One {@code cocoon worker} per {@code --payment-dir}: two on one directory share a payment key,
 * and each would overwrite the other's channel states and token counts (audit P, P-6). Held, as
 * an OS file lock on {@code worker.lock} there, until closed or the process ends, so a crashed
 * worker leaves nothing to clean up.
 */
final class PaymentDirLock implements AutoCloseable {
    static final String FILE_NAME = "worker.lock";

    private final FileLock lock;

    private PaymentDirLock(FileLock lock) {
        this.lock = lock;
    }

    /** @throws Cocoon.StartFailure when another worker holds the directory */
    static PaymentDirLock hold(Path dir) throws IOException {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new Cocoon.StartFailure("--payment-dir " + dir + " is not a directory", null);
        }
        Files.createDirectories(dir);
        Path file = dir.resolve(FILE_NAME);
        FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = channel.tryLock();
        } catch (OverlappingFileLockException heldHere) {
            lock = null;  // by this JVM: a worker run in-process before this one is still running
        }
        if (lock == null) {
            channel.close();
            throw new Cocoon.StartFailure("--payment-dir " + dir + " is in use by another cocoon worker (it holds " + file
                    + "): two workers on one payment key would overwrite each other's channel states; give each worker a"
                    + " --payment-dir of its own", null);
        }
        return new PaymentDirLock(lock);
    }

    @Override
    public void close() throws IOException {
        lock.acquiredBy().close();  // closing the channel releases the lock
    }
}
