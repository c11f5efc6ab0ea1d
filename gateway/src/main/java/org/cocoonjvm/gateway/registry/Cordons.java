package org.cocoonjvm.gateway.registry;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import org.cocoonjvm.protocol.PrintableIds;
import org.cocoonjvm.protocol.files.AtomicFile;

/**
 * Worker ids the operator took out of routing ({@code POST /admin/workers/{id}/cordon}): their
 * running requests finish and are paid, no new one is routed to them. Kept by id, not on the
 * registration, so a worker that reconnects stays out; and, given a file, across restarts, so a
 * worker taken out for a reason does not come back with the gateway's next deploy.
 */
public final class Cordons {
    private final Set<String> ids = ConcurrentHashMap.newKeySet();
    /** null: in memory only */
    private final Path file;

    private Cordons(Path file) {
        this.file = file;
    }

    public static Cordons inMemory() {
        return new Cordons(null);
    }

    /**
     * The cordons saved in {@code file} (none while it does not exist).
     *
     * @throws IllegalArgumentException when it does not read as what {@link #save} writes: starting
     *                                  without them would route to workers the operator took out
     */
    public static Cordons load(Path file) {
        Cordons cordons = new Cordons(file);
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return cordons;
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the cordoned workers in " + file + ": " + e.getMessage(), e);
        }
        try {
            JsonArray saved = new JsonObject(text).getJsonArray("cordoned");
            if (saved == null) {
                throw new IllegalArgumentException("it has no \"cordoned\" list");
            }
            for (Object id : saved) {
                if (!(id instanceof String s) || s.isEmpty() || PrintableIds.problem(s, PrintableIds.MAX_WORKER_ID) != null) {
                    throw new IllegalArgumentException(id + " is not a worker id");
                }
                cordons.ids.add(s);
            }
        } catch (DecodeException | ClassCastException | IllegalArgumentException e) {
            throw new IllegalArgumentException("the cordoned workers in " + file + " do not read: " + e.getMessage()
                    + " (expected {\"cordoned\": [\"worker-id\", …]}; fix or remove it)", e);
        }
        return cordons;
    }

    public boolean contains(String workerId) {
        return ids.contains(workerId);
    }

    /** Where they are kept; null in memory only. */
    public Path file() {
        return file;
    }

    /**
     * In effect at once: the next pick skips the worker. Kept across restarts once {@link #save}d.
     *
     * @return whether it was not cordoned before
     */
    public boolean add(String workerId) {
        return ids.add(workerId);
    }

    /** @return whether it was cordoned; as {@link #add}, in effect at once */
    public boolean remove(String workerId) {
        return ids.remove(workerId);
    }

    /**
     * Writes the cordons in effect to the file, off the event loop. Also when the last change
     * changed nothing: that repairs a file an earlier failed save left behind.
     */
    public Future<Void> save(Vertx vertx) {
        return file == null ? Future.succeededFuture() : vertx.executeBlocking(() -> {
            write();
            return null;
        }, false);
    }

    /** Under the lock, so that whichever save runs last writes the latest set. */
    private synchronized void write() throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        AtomicFile.replace(file, new JsonObject().put("cordoned", new JsonArray(new TreeSet<>(ids).stream().toList()))
                .encodePrettily(), false);
    }
}
