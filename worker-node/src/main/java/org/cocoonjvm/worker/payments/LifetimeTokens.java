package org.cocoonjvm.worker.payments;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.cocoonjvm.protocol.files.AtomicFile;

/**
 * The tokens a worker served over all its runs. Its state directory's {@code tokens.json} holds
 * the total as of the last save; a run's own counts (from 0 at its start) go on top. Saved every
 * few seconds and at stop, not per token: a crash (SIGKILL, power loss) loses the tokens counted
 * since the last save, and only those. The nanoTON a worker earned are in its channel files,
 * written before each payment counts, and a crash loses none of them.
 */
final class LifetimeTokens {
    private static final String FILE = "tokens.json";

    /** Null: memory only, and the lifetime is this run. */
    private final Path file;
    private final TokenCounts before;
    private TokenCounts saved;

    /** @param dir the state directory, created already; null: memory only */
    LifetimeTokens(Path dir) {
        this.file = dir == null ? null : dir.resolve(FILE);
        this.before = dir == null ? TokenCounts.NONE : read(dir);
        this.saved = before;
    }

    /**
     * The totals saved in {@code dir}; none when it has no {@code tokens.json} yet.
     *
     * @throws IllegalStateException when the file is there and unreadable: a worker would rather
     *                               not start than count its tokens from 0 again
     */
    static TokenCounts read(Path dir) {
        Path file = dir.resolve(FILE);
        if (!Files.exists(file)) {
            return TokenCounts.NONE;
        }
        if (!Files.isRegularFile(file)) {
            throw new IllegalStateException(unusable(file, "it is not a file"));
        }
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the token counts " + file, e);
        }
        try {
            JsonObject json = new JsonObject(text);
            return new TokenCounts(count(json, "completion_tokens"), count(json, "prompt_tokens"));
        } catch (RuntimeException e) {
            throw new IllegalStateException(unusable(file, StoredJson.problem(e)), e);
        }
    }

    private static String unusable(Path file, String why) {
        return "the token counts " + file + " are unusable (" + why + "): restore the file, or move it aside to count "
                + "this worker's tokens from 0 (what it earned is kept in its channel files, not there)";
    }

    /** A whole non-negative number that fits a long: a huge or fractional one is corrupt, not rounded (audit P, P-5). */
    private static long count(JsonObject json, String field) {
        Object value = json.getValue(field);
        if (value == null) {
            throw new IllegalArgumentException(field + " is missing");
        }
        if (!(value instanceof Integer || value instanceof Long) || ((Number) value).longValue() < 0) {
            throw new IllegalArgumentException(field + " is " + (value instanceof String ? "\"" + value + "\"" : value)
                    + ", not a whole number from 0 to " + Long.MAX_VALUE);
        }
        return ((Number) value).longValue();
    }

    TokenCounts total(TokenCounts run) {
        return before.plus(run);
    }

    /** Writes the total with {@code run}'s counts, unless that is what the file holds. */
    synchronized void save(TokenCounts run) {
        TokenCounts total = total(run);
        if (file == null || total.equals(saved)) {
            return;
        }
        try {
            AtomicFile.replace(file, new JsonObject().put("completion_tokens", total.completion())
                    .put("prompt_tokens", total.prompt()).encodePrettily(), false);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot save the token counts " + file, e);
        }
        saved = total;
    }
}
