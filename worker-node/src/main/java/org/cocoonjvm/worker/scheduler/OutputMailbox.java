package org.cocoonjvm.worker.scheduler;

import io.vertx.core.Context;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;

/**
 * Hands tokens from the engine thread to a sequence's {@link EventTarget} on its own event loop,
 * without locks. Tokens that arrive while the target is busy or its write queue is full are
 * merged into one {@link Delta} (or a few, each under {@link #MAX_DELTA_BYTES}), so a slow reader
 * gets fewer, larger deltas and the engine never waits for it.
 */
public final class OutputMailbox {
    /**
     * How large a merged delta may grow. The gateway's gRPC client reads messages up to Vert.x's
     * default of 256 KiB (a client over a transport of its own cannot raise it), and the backlog of
     * a reader slow for long enough would pass that and fail its stream mid-answer.
     */
    static final int MAX_DELTA_BYTES = 64 * 1024;

    private final Context context;
    private final EventTarget target;
    /** {@link Piece}s then at most one {@link Final}; filled by the engine thread, emptied on the context. */
    private final ConcurrentLinkedQueue<Object> pending = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean drainScheduled = new AtomicBoolean();
    private boolean finished;

    /** {@code token}: its id, or -1; {@code tokensWithoutIds}: tokens it completed whose ids are unknown. */
    private record Piece(int token, int tokensWithoutIds, String text) {}

    private record Accepted(int promptTokens) {}

    public OutputMailbox(Context context, EventTarget target) {
        this.context = context;
        this.target = target;
    }

    /** From the producing thread: the sequence was queued; comes before any token. */
    public void accepted(int promptTokens) {
        pending.add(new Accepted(promptTokens));
        schedule();
    }

    /**
     * From the producing thread: one sampled token (or -1 for text without a token id) and the
     * text it completed, possibly empty.
     */
    public void token(int token, String text) {
        pending.add(new Piece(token, 0, text));
        schedule();
    }

    /**
     * From the producing thread: text that completed {@code count} tokens whose ids are unknown (a
     * forwarding worker's upstream says how many tokens it produced, not which); count may be 0.
     */
    public void tokens(int count, String text) {
        pending.add(new Piece(-1, count, text));
        schedule();
    }

    /** From the producing thread: the sequence is over; no calls follow. */
    public void finish(Final fin) {
        pending.add(fin);
        schedule();
    }

    private void schedule() {
        if (drainScheduled.compareAndSet(false, true)) {
            context.runOnContext(v -> drain());
        }
    }

    private void drain() {
        // Cleared before polling: an item added after this point schedules another drain.
        drainScheduled.set(false);
        if (finished) {
            return;
        }
        if (target.writeQueueFull()) {
            target.drainHandler(v -> drain());
            return;
        }
        Delta.Builder merged = null;
        StringBuilder text = null;
        Final fin = null;
        for (Object item; (item = pending.poll()) != null; ) {
            if (item instanceof Piece piece) {
                if (merged == null) {
                    merged = Delta.newBuilder();
                    text = new StringBuilder();
                }
                if (piece.token() >= 0) {
                    merged.addTokenIds(piece.token());
                }
                if (piece.tokensWithoutIds() > 0) {
                    merged.setTokensWithoutIds(merged.getTokensWithoutIds() + piece.tokensWithoutIds());
                }
                text.append(piece.text());
                // At worst three bytes of UTF-8 a char and a five-byte varint a token id.
                if (text.length() * 3L + merged.getTokenIdsCount() * 5L >= MAX_DELTA_BYTES) {
                    target.delta(merged.setText(text.toString()).build());
                    merged = null;
                }
            } else if (item instanceof Accepted accepted) {
                target.accepted(accepted.promptTokens());
            } else {
                fin = (Final) item;
                break;
            }
        }
        if (merged != null) {
            target.delta(merged.setText(text.toString()).build());
        }
        if (fin != null) {
            finished = true;
            target.finish(fin);
        }
    }
}
