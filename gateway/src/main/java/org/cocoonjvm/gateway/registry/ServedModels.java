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
import java.time.DateTimeException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.cocoonjvm.protocol.files.AtomicFile;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The registry's known models ({@link WorkerRegistry.KnownModel}), kept in a file across restarts.
 * A gateway restarted in a rolling deploy answers its workers' models before they have reconnected
 * (seconds: their reconnect backoff); from memory alone it answered 404 {@code model_not_found},
 * which the OpenAI SDKs take as final, where a model served before the stop is a model whose
 * workers are on their way back (503, retryable). And {@code created} in {@code /v1/models}
 * stays when the model was first served, not when the gateway last started.
 *
 * <p>Saved off the event loop, atomically ({@link AtomicFile}), every {@link #SAVE_EVERY_MS} while
 * the content changes (a model served counts as served up to the save, so a crash loses at most
 * that much of its recency) and once more at a stop.
 */
public final class ServedModels {
    private static final Logger log = LoggerFactory.getLogger(ServedModels.class);
    static final long SAVE_EVERY_MS = 30_000;
    /** Each entry's, all required. */
    private static final List<String> FIELDS = List.of("key", "name", "hash", "max_context", "chat_template_tokens",
            "chat_message_tokens", "created", "last_served");

    /**
     * One known model as saved.
     *
     * @param key              what clients ask for it by: its name, or name@hash
     * @param model            as the latest registration serving it announced it
     * @param createdSeconds   Unix time the gateway first saw it served
     * @param lastServedMillis Unix time in ms it was last served: the save's time while a worker served it
     */
    public record Saved(String key, ModelRef model, long createdSeconds, long lastServedMillis) {}

    /** null: in memory only */
    private final Path file;
    private final List<Saved> loaded;
    /** What the last write wrote, under the lock: an unchanged content is not written again. */
    private String written;

    private ServedModels(Path file, List<Saved> loaded) {
        this.file = file;
        this.loaded = List.copyOf(loaded);
    }

    public static ServedModels inMemory() {
        return new ServedModels(null, List.of());
    }

    /**
     * The models saved in {@code file} (none while it does not exist).
     *
     * @throws IllegalArgumentException when it does not read as what {@link #save} writes: a start
     *                                  that ignored it would answer 404 for models it may not
     */
    public static ServedModels load(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return new ServedModels(file, List.of());
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the known models in " + file + ": " + e.getMessage(), e);
        }
        List<Saved> models = new ArrayList<>();
        try {
            JsonArray saved = new JsonObject(text).getJsonArray("models");
            if (saved == null) {
                throw new IllegalArgumentException("it has no \"models\" list");
            }
            for (Object entry : saved) {
                models.add(parse((JsonObject) entry));
            }
        } catch (DecodeException | ClassCastException | DateTimeException | IllegalArgumentException e) {
            throw new IllegalArgumentException("the known models in " + file + " do not read: " + e.getMessage()
                    + " (expected {\"models\": [{" + String.join(", ", FIELDS.stream().map(f -> "\"" + f + "\"").toList())
                    + "}, …]}; fix or remove it)", e);
        }
        return new ServedModels(file, models);
    }

    private static Saved parse(JsonObject j) {
        for (String field : FIELDS) {
            if (j.getValue(field) == null) {
                throw new IllegalArgumentException("an entry has no \"" + field + "\"");
            }
        }
        ModelRef model = ModelRef.newBuilder().setName(j.getString("name")).setHash(j.getString("hash"))
                .setMaxContext(uint32(j, "max_context")).setChatTemplateTokens(uint32(j, "chat_template_tokens"))
                .setChatMessageTokens(uint32(j, "chat_message_tokens")).build();
        String key = j.getString("key");
        if (model.getName().isEmpty() || !ModelKeys.keys(model).contains(key)) {
            throw new IllegalArgumentException("key " + key + " is not the name of model " + ModelKeys.id(model)
                    + ", nor name@hash");
        }
        return new Saved(key, model, j.getLong("created"), Instant.parse(j.getString("last_served")).toEpochMilli());
    }

    private static int uint32(JsonObject j, String field) {
        long value = j.getLong(field);
        if (value < 0 || value > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException(field + " " + value + " is out of range");
        }
        return (int) value;
    }

    /** What the previous run saved, as it saved it; the registry decides what is still recent. */
    public List<Saved> loaded() {
        return loaded;
    }

    /** Where they are kept; null in memory only. */
    public Path file() {
        return file;
    }

    /**
     * Writes {@code snapshot}, taken under the write's lock (so that whichever save runs last writes
     * the latest), off the event loop; nothing when it is what the last write wrote.
     */
    public Future<Void> save(Vertx vertx, Supplier<List<Saved>> snapshot) {
        return file == null ? Future.succeededFuture() : vertx.executeBlocking(() -> {
            write(snapshot);
            return null;
        }, false);
    }

    /**
     * {@link #save}s every {@link #SAVE_EVERY_MS}; a failing save is logged once, and once more when
     * saves work again.
     *
     * @return the timer, to cancel at the stop; -1 in memory only
     */
    public long saveEvery(Vertx vertx, Supplier<List<Saved>> snapshot) {
        if (file == null) {
            return -1;
        }
        AtomicBoolean failing = new AtomicBoolean();
        return vertx.setPeriodic(SAVE_EVERY_MS, id -> save(vertx, snapshot).onComplete(done -> {
            if (done.failed() && failing.compareAndSet(false, true)) {
                log.warn("cannot save the known models in {} ({}): a restart now answers 404 for models served since"
                        + " the last save until their workers are back; retried every {} s", file, done.cause().toString(),
                        SAVE_EVERY_MS / 1000);
            } else if (done.succeeded() && failing.compareAndSet(true, false)) {
                log.info("the known models are saved in {} again", file);
            }
        }));
    }

    private synchronized void write(Supplier<List<Saved>> snapshot) throws IOException {
        JsonArray models = new JsonArray();
        for (Saved s : snapshot.get()) {
            ModelRef m = s.model();
            models.add(new JsonObject().put("key", s.key()).put("name", m.getName()).put("hash", m.getHash())
                    .put("max_context", Integer.toUnsignedLong(m.getMaxContext()))
                    .put("chat_template_tokens", Integer.toUnsignedLong(m.getChatTemplateTokens()))
                    .put("chat_message_tokens", Integer.toUnsignedLong(m.getChatMessageTokens()))
                    .put("created", s.createdSeconds()).put("last_served", Instant.ofEpochMilli(s.lastServedMillis()).toString()));
        }
        String content = new JsonObject().put("models", models).encodePrettily();
        if (content.equals(written)) {
            return;
        }
        Files.createDirectories(file.toAbsolutePath().getParent());
        AtomicFile.replace(file, content, false);
        written = content;
    }
}
