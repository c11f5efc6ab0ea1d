package org.cocoonjvm.gateway.billing;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.ledger.LedgerUnavailableException;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The settlements the ledger has not taken, on local disk, so that a gateway stopped (or killed)
 * during a ledger outage bills them at its next start as their clients were told, instead of
 * leaving their reservations to the start's recovery, which ends them at their last checkpoints
 * (audit N, N-4).
 *
 * <p>An append-only file of JSON lines: a {@code kept} line per settlement the ledger did not
 * take, written and fsynced before the settlement goes to the background retry (and so before
 * its client is told its cost), and a {@code taken} line once the ledger took it (or refused it
 * for good). Once none is left the file is deleted: the normal path writes nothing, only a
 * settlement the ledger failed does. A crash while a line is written leaves it torn; its client
 * was not answered yet, and {@link #replay} skips it with a WARN.
 *
 * <p>{@link #replay} runs every settlement still kept at the next start, before the start's
 * recovery ends the reservations left open. That is safe in every case: a reservation ends once
 * and a second end returns the first outcome, so one that the ledger did take (its {@code taken}
 * line lost in the crash) is not charged again; one that recovery already ended (another
 * gateway's sweep, after this gateway's lease expired) is refused ({@link
 * ReservationRecoveredException}) and stays billed at that checkpoint, once.
 *
 * <p>{@link #inMemory()} keeps nothing (the demo, tests): then a stop before the ledger's return
 * leaves those reservations to the next start's recovery. Thread-safe.
 */
public final class PendingJournal {
    private static final Logger log = LoggerFactory.getLogger(PendingJournal.class);
    /** Its name in the gateway's {@code --data-dir}. */
    public static final String FILE_NAME = "pending-settlements.jsonl";
    private static final int FORMAT = 1;

    /** Null: memory only. */
    private final Path file;
    /** The reservations kept in the file and not taken yet. */
    private final Set<Long> kept = new HashSet<>();
    /**
     * The file holds nothing but what this journal kept: it was replayed, or this journal created
     * it. Only then may it be deleted once none is left; a file of an earlier run not replayed
     * yet must stay for the start that replays it.
     */
    private boolean ours;

    private PendingJournal(Path file) {
        this.file = file;
    }

    /** Keeps nothing: settlements not taken when the gateway stops are ended by the next start's recovery. */
    public static PendingJournal inMemory() {
        return new PendingJournal(null);
    }

    /** The journal {@link #FILE_NAME} in {@code dataDir} (created with its first line). */
    public static PendingJournal inDirectory(Path dataDir) {
        return new PendingJournal(dataDir.toAbsolutePath().resolve(FILE_NAME));
    }

    /** Where it is kept; empty for {@link #inMemory()}. */
    public Optional<Path> file() {
        return Optional.ofNullable(file);
    }

    /** What {@link #replay} did. */
    public record Replayed(int settled, long chargedNanoton, int notBilled) {
        static final Replayed NONE = new Replayed(0, 0, 0);
    }

    /**
     * Writes the settlement durably (fsync) before the caller hands it to the retry queue.
     *
     * @throws IOException if it could not be written: then it is not kept (and a torn line is cut back)
     */
    synchronized void keep(PendingSettlement pending) throws IOException {
        if (file == null) {
            return;
        }
        if (!Files.exists(file)) {
            ours = true;
        }
        append(encode(pending));
        kept.add(pending.reservation().id());
    }

    /**
     * The ledger took the settlement, or refused it for good: not to run again. The file goes once
     * none is left. A failure to write this is only logged: running it again bills nothing more.
     */
    synchronized void taken(PendingSettlement pending) {
        if (file == null || !kept.remove(pending.reservation().id())) {
            return;
        }
        try {
            if (kept.isEmpty() && ours) {
                Files.deleteIfExists(file);
                syncDirectory();
            } else {
                append(new JsonObject().put("v", FORMAT).put("op", "taken")
                        .put("reservation_id", pending.reservation().id()).encode());
            }
        } catch (IOException e) {
            log.warn("{}: could not record that the ledger took request {}'s settlement ({}); the next start runs it "
                    + "again, which charges nothing more", file, pending.requestId(), e.toString());
        }
    }

    /**
     * Runs every settlement the last run kept and the ledger had not taken, then deletes the file.
     * Call it at start, once the ledger is open and before {@link AccountBook#recoverOpenReservations()}:
     * recovery would end those reservations at their last checkpoints.
     *
     * @throws LedgerUnavailableException if the ledger went away meanwhile: the file is left as it
     *                                    is (what ran already runs again harmlessly), and the start
     *                                    must stop before its recovery
     * @throws UncheckedIOException       if the file cannot be read or deleted
     */
    public synchronized Replayed replay(AccountBook accounts) {
        if (file == null || !Files.exists(file)) {
            ours = true;
            return Replayed.NONE;
        }
        Map<Long, PendingSettlement> open;
        try {
            open = read(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new UncheckedIOException("could not read the pending settlements in " + file, e);
        }
        int settled = 0;
        int notBilled = 0;
        long charged = 0;
        for (PendingSettlement pending : open.values()) {
            try {
                Settlement settlement = pending.bill(accounts);
                settled++;
                charged += settlement.chargedNanoton();
                log.info("request {}: settled from the last run's pending settlements, charging {} nanoTON on reservation {}",
                        pending.requestId(), settlement.chargedNanoton(), pending.reservation().id());
            } catch (LedgerUnavailableException e) {
                throw e;
            } catch (ReservationRecoveredException e) {
                notBilled++;
                log.warn("request {}: not billed the {} nanoTON it was told, kept from the last run: {}", pending.requestId(),
                        pending.costNanoton(), e.getMessage());
            } catch (RuntimeException e) {
                notBilled++;
                log.error("request {}: the ledger refused its settlement kept from the last run ({} nanoTON, reservation {})",
                        pending.requestId(), pending.costNanoton(), pending.reservation().id(), e);
            }
        }
        try {
            Files.deleteIfExists(file);
            syncDirectory();
        } catch (IOException e) {
            throw new UncheckedIOException("could not delete " + file + " once its pending settlements were settled", e);
        }
        ours = true;
        if (!open.isEmpty()) {
            log.info("ledger: settled {} settlements the last run kept in {} for the ledger's return, charging {} nanoTON{}",
                    settled, file, charged, notBilled == 0 ? "" : "; " + notBilled + " could not be billed (logged above)");
        }
        return new Replayed(settled, charged, notBilled);
    }

    /** The settlements kept and not taken, in the order they were kept; torn or unreadable lines skipped with a WARN. */
    private Map<Long, PendingSettlement> read(byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        String[] lines = text.split("\n", -1);
        Map<Long, PendingSettlement> open = new LinkedHashMap<>();
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty()) {
                continue;
            }
            boolean last = i == lines.length - 1 || (i == lines.length - 2 && lines[lines.length - 1].isEmpty());
            try {
                JsonObject json = new JsonObject(line);
                long reservation = number(json, "reservation_id");
                String op = text(json, "op");
                switch (op) {
                    case "kept" -> open.put(reservation, decode(json));
                    case "taken" -> open.remove(reservation);
                    default -> throw new IllegalArgumentException("unknown op '" + op + "'");
                }
            } catch (DecodeException | IllegalArgumentException e) {
                if (last) {
                    log.warn("{}: skipped its torn last line (the gateway stopped while writing it, before the request's "
                            + "client was told its cost; its reservation ends at its last checkpoint): {}", file, abbreviate(line));
                } else {
                    log.warn("{}: skipped unreadable line {} ({}): {}", file, i + 1, e.getMessage(), abbreviate(line));
                }
            }
        }
        return open;
    }

    private static String abbreviate(String line) {
        return line.length() <= 200 ? line : line.substring(0, 200) + "…";
    }

    static String encode(PendingSettlement pending) {
        Reservation r = pending.reservation();
        JsonObject json = new JsonObject().put("v", FORMAT).put("op", "kept").put("request_id", pending.requestId())
                .put("account_id", r.accountId()).put("reservation_id", r.id()).put("amount_nanoton", r.amountNanoton());
        RequestRecord q = pending.record();
        if (q != null) {
            json.put("record", new JsonObject().put("request_id", q.requestId()).put("worker_id", q.workerId())
                    .put("channel_id", q.channelId()).put("model", q.model())
                    .put("prompt_tokens", q.tokens().prompt()).put("cached_tokens", q.tokens().cached())
                    .put("completion_tokens", q.tokens().completion()).put("reasoning_tokens", q.tokens().reasoning())
                    .put("client_cost_nanoton", q.clientCostNanoton()).put("worker_fee_nanoton", q.workerFeeNanoton()));
        }
        return json.encode();
    }

    /** @throws IllegalArgumentException naming the field that is missing or of the wrong type */
    static PendingSettlement decode(JsonObject json) {
        Reservation reservation = new Reservation(text(json, "account_id"), number(json, "reservation_id"),
                number(json, "amount_nanoton"));
        if (json.getValue("record") != null && !(json.getValue("record") instanceof JsonObject)) {
            throw new IllegalArgumentException("'record' is not an object");
        }
        JsonObject q = json.getJsonObject("record");
        RequestRecord record = q == null ? null : new RequestRecord(text(q, "request_id"), optionalText(q, "worker_id"),
                optionalText(q, "channel_id"), text(q, "model"),
                new TokenCounts(number(q, "prompt_tokens"), number(q, "cached_tokens"), number(q, "completion_tokens"),
                        number(q, "reasoning_tokens")),
                number(q, "client_cost_nanoton"), number(q, "worker_fee_nanoton"));
        return new PendingSettlement(text(json, "request_id"), reservation, record);
    }

    private static long number(JsonObject json, String field) {
        if (!(json.getValue(field) instanceof Number n) || n.doubleValue() != n.longValue()) {
            throw new IllegalArgumentException("'" + field + "' is " + (json.containsKey(field) ? "not a whole number" : "missing"));
        }
        return n.longValue();
    }

    private static String text(JsonObject json, String field) {
        String value = optionalText(json, field);
        if (value == null) {
            throw new IllegalArgumentException("'" + field + "' is missing");
        }
        return value;
    }

    private static String optionalText(JsonObject json, String field) {
        Object value = json.getValue(field);
        if (value != null && !(value instanceof String)) {
            throw new IllegalArgumentException("'" + field + "' is not a string");
        }
        return (String) value;
    }

    /** One line, fsynced; a line that failed midway is cut back, so that the next one starts on a line of its own. */
    private void append(String line) throws IOException {
        boolean created = !Files.exists(file);
        if (created) {
            Files.createDirectories(file.getParent());
        }
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.READ)) {
            long end = out.size();
            String text = line + "\n";
            if (end > 0) {
                // After a line torn by a failed write that could not be cut back: start a new one.
                ByteBuffer lastByte = ByteBuffer.allocate(1);
                out.read(lastByte, end - 1);
                if (lastByte.get(0) != '\n') {
                    text = "\n" + text;
                }
            }
            ByteBuffer bytes = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
            try {
                long at = end;
                while (bytes.hasRemaining()) {
                    at += out.write(bytes, at);
                }
                out.force(true);
            } catch (IOException e) {
                try {
                    out.truncate(end);
                } catch (IOException cut) {
                    e.addSuppressed(cut);
                }
                throw e;
            }
        }
        if (created) {
            syncDirectory();
        }
    }

    /** A file created or deleted is durable once its directory entry is. */
    private void syncDirectory() throws IOException {
        try (FileChannel directory = FileChannel.open(file.getParent(), StandardOpenOption.READ)) {
            directory.force(true);
        }
    }
}
