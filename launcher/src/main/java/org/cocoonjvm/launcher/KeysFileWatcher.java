package org.cocoonjvm.launcher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.cocoonjvm.gateway.api.ApiKey;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads a running gateway's {@code --api-keys-file} again when it changes, so that adding,
 * revoking or re-limiting a key needs no restart (a restart would end every stream after its
 * grace). A file that no longer reads as keys (a typo, no key left) changes nothing: the gateway
 * keeps the keys it has and says why at WARN, and takes the file as soon as it is fixed.
 *
 * <p>Polled, not watched: a file system watch misses the symlink swap by which Kubernetes updates
 * a mounted secret, and a check every {@value #CHECK_INTERVAL_MS} ms of one file's attributes
 * costs nothing.
 */
final class KeysFileWatcher implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(KeysFileWatcher.class);
    static final long CHECK_INTERVAL_MS = 2_000;

    private final Path file;
    private final List<String> commandLineKeys;
    private final Function<List<String>, Map<String, ApiKey>> parse;
    private final Consumer<Map<String, ApiKey>> take;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("keys-file").daemon().factory());
    private Map<String, ApiKey> current;
    private FileTime readModified;
    private long readSize;
    private String lastProblem;

    /**
     * @param commandLineKeys the {@code --api-key}s, which count beside the file's
     * @param parse           key lines to keys, refusing bad ones with {@link Cocoon.UsageException}
     * @param take            opens the new keys' accounts (blocking: the ledger) and hands the keys to the gateway
     */
    private KeysFileWatcher(Path file, List<String> commandLineKeys, Map<String, ApiKey> current,
                            Function<List<String>, Map<String, ApiKey>> parse, Consumer<Map<String, ApiKey>> take) {
        this.file = file;
        this.commandLineKeys = List.copyOf(commandLineKeys);
        this.current = current;
        this.parse = parse;
        this.take = take;
    }

    /** Starts checking {@code file}, whose keys (with the command line's) are {@code current} now. */
    static KeysFileWatcher start(Path file, List<String> commandLineKeys, Map<String, ApiKey> current,
                                 Function<List<String>, Map<String, ApiKey>> parse, Consumer<Map<String, ApiKey>> take) {
        KeysFileWatcher watcher = new KeysFileWatcher(file, commandLineKeys, current, parse, take);
        watcher.timer.scheduleWithFixedDelay(watcher::check, CHECK_INTERVAL_MS, CHECK_INTERVAL_MS, TimeUnit.MILLISECONDS);
        return watcher;
    }

    /** Takes the file if it changed since it was last read; runs on the watcher's thread. */
    synchronized void check() {
        try {
            if (changed()) {
                read();
            }
        } catch (RuntimeException e) {
            // The ledger could not open a new key's account, say: the next check tries again.
            readModified = null;
            problem("could not take its keys (" + e.getMessage() + ")");
            log.debug("keys file", e);
        }
    }

    /** Whether the file's time or size differ from what was last read; records them. */
    private boolean changed() {
        BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException e) {
            problem("cannot be read (" + e.getClass().getSimpleName() + ")");
            return false;
        }
        boolean changed = !attributes.lastModifiedTime().equals(readModified) || attributes.size() != readSize;
        readModified = attributes.lastModifiedTime();
        readSize = attributes.size();
        return changed;
    }

    private void read() {
        Map<String, ApiKey> next;
        try {
            List<String> lines = new ArrayList<>(commandLineKeys);
            lines.addAll(Keys.read("--api-keys-file", file));
            if (lines.isEmpty()) {
                throw new Cocoon.UsageException("it holds no key, and the gateway needs one");
            }
            next = parse.apply(lines);
        } catch (Cocoon.UsageException e) {
            problem(e.getMessage());
            return;
        }
        lastProblem = null;
        if (next.equals(current)) {
            return;  // touched, or reformatted, or the first check after start: the keys the gateway has
        }
        take.accept(next);
        log.info("--api-keys-file {}: {} keys now; added {}, removed {}, limits or account changed {}", file, next.size(),
                ids(next, current), ids(current, next), changedIds(next));
        current = next;
    }

    /** Once per distinct problem: a file left broken is not a WARN every two seconds. */
    private void problem(String problem) {
        if (!problem.equals(lastProblem)) {
            lastProblem = problem;
            log.warn("--api-keys-file {}: {}; the gateway keeps its {} keys until the file reads well", file, problem,
                    current.size());
        }
    }

    /** Ids of the keys in {@code a} that {@code b} does not have. */
    private static TreeSet<String> ids(Map<String, ApiKey> a, Map<String, ApiKey> b) {
        TreeSet<String> ids = new TreeSet<>();
        a.forEach((digest, key) -> {
            if (!b.containsKey(digest)) {
                ids.add(key.id());
            }
        });
        return ids;
    }

    private TreeSet<String> changedIds(Map<String, ApiKey> next) {
        TreeSet<String> ids = new TreeSet<>();
        next.forEach((digest, key) -> {
            ApiKey before = current.get(digest);
            if (before != null && !Objects.equals(before, key)) {
                ids.add(key.id());
            }
        });
        return ids;
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
