package org.cocoonjvm.worker.scheduler;

import io.vertx.core.Context;
import java.util.ArrayDeque;
import java.util.Arrays;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;

/**
 * Hands tokens from the engine thread to a sequence's {@link EventTarget} on its own event loop.
 * Tokens that arrive while the target is busy or its write queue is full are merged as they
 * arrive, into one {@link Delta} (or a few, each under {@link #MAX_DELTA_BYTES}): a slow reader
 * gets fewer, larger deltas, the engine never waits for it, and what it has not read yet costs its
 * text and four bytes a token id, not an object per token.
 */
public final class OutputMailbox {
    /**
     * How large a merged delta may grow. The gateway's gRPC client reads messages up to Vert.x's
     * default of 256 KiB (a client over a transport of its own cannot raise it), and the backlog of
     * a reader slow for long enough would pass that and fail its stream mid-answer.
     */
    static final int MAX_DELTA_BYTES = 64 * 1024;
    private static final Delta[] NONE = new Delta[0];

    private final Context context;
    private final EventTarget target;

    // Guarded by this: filled by the engine thread, taken on the context. The lock is held for an
    // append or a swap, never across a call into the target.
    private int acceptedPrompt = -1;
    private int[] ids = new int[16];
    private int idCount;
    private int withoutIds;
    private final StringBuilder text = new StringBuilder();
    /** Whether anything was added since the last seal: a token without text still makes a delta. */
    private boolean open;
    /** Deltas sealed at the size bound, waiting for the reader. */
    private final ArrayDeque<Delta> sealed = new ArrayDeque<>(0);
    private Final fin;
    private CreditGate.Meter meter;
    private boolean drainScheduled;

    /** Only on the context. */
    private boolean finished;
    /**
     * What went out on the target while it was there, as the gateway counts it (Accepted's
     * prompt, each Delta's tokens): what the gateway bills when the Final cannot follow. Only on
     * the context.
     */
    private int deliveredPrompt;
    private long deliveredCompletion;

    public OutputMailbox(Context context, EventTarget target) {
        this.context = context;
        this.target = target;
    }

    /** From the producing thread: the sequence was queued; comes before any token. */
    public void accepted(int promptTokens) {
        boolean schedule;
        synchronized (this) {
            acceptedPrompt = promptTokens;
            schedule = claimDrain();
        }
        scheduleIf(schedule);
    }

    /**
     * From the producing thread: one sampled token (or -1 for text without a token id) and the
     * text it completed, possibly empty.
     */
    public void token(int token, String text) {
        add(token, 0, text);
    }

    /**
     * From the producing thread: text that completed {@code count} tokens whose ids are unknown (a
     * forwarding worker's upstream says how many tokens it produced, not which); count may be 0.
     */
    public void tokens(int count, String text) {
        add(-1, count, text);
    }

    /**
     * From the producing thread: the sequence is over; no calls follow.
     *
     * @param meter told what reached the caller if the target is gone before the Final goes out
     */
    public void finish(Final last, CreditGate.Meter meter) {
        boolean schedule;
        synchronized (this) {
            fin = last;
            this.meter = meter;
            schedule = claimDrain();
        }
        scheduleIf(schedule);
    }

    private void add(int token, int tokensWithoutIds, String piece) {
        boolean schedule;
        synchronized (this) {
            if (token >= 0) {
                if (idCount == ids.length) {
                    ids = Arrays.copyOf(ids, ids.length * 2);
                }
                ids[idCount++] = token;
            }
            withoutIds += tokensWithoutIds;
            text.append(piece);
            open = true;
            // At worst three bytes of UTF-8 a char and a five-byte varint a token id. Sealed at a
            // piece's end, so a delta never splits a character's surrogate pair.
            if (text.length() * 3L + idCount * 5L >= MAX_DELTA_BYTES) {
                sealed.add(takeOpen());
            }
            schedule = claimDrain();
        }
        scheduleIf(schedule);
    }

    /** Under the lock. */
    private Delta takeOpen() {
        Delta.Builder delta = Delta.newBuilder().setText(text.toString());
        for (int i = 0; i < idCount; i++) {
            delta.addTokenIds(ids[i]);
        }
        if (withoutIds > 0) {
            delta.setTokensWithoutIds(withoutIds);
        }
        text.setLength(0);
        idCount = 0;
        withoutIds = 0;
        open = false;
        if (ids.length > 1024) {
            ids = new int[16];  // a long backlog's array is not kept for the rest of the stream
        }
        return delta.build();
    }

    /** Under the lock: whether the caller is the one to schedule the next drain. */
    private boolean claimDrain() {
        if (drainScheduled) {
            return false;
        }
        drainScheduled = true;
        return true;
    }

    /** Outside the lock: the context may run the drain at once, on this thread. */
    private void scheduleIf(boolean claimed) {
        if (claimed) {
            context.runOnContext(v -> drain());
        }
    }

    /**
     * After a stall the loop runs the tasks queued meanwhile, and those queued as it resumed,
     * before it reads the network again, and a gateway that cut this worker for its silence has
     * given up on the stream: what a drain then wrote would be taken by the kernel, even read by
     * the gateway, and never counted. So a drain on a loop that stalled lately first makes sure the
     * caller is still there (EventTarget.afterRoundTrip), and what the gateway never counted is not
     * taken as delivered (see {@link #deliveredCompletion}).
     */
    private void drain() {
        if (!finished && target.stalledLately()) {
            target.afterRoundTrip(this::drainNow);
        } else {
            drainNow();
        }
    }

    private void drainNow() {
        if (finished) {
            return;
        }
        if (target.writeQueueFull()) {
            synchronized (this) {
                drainScheduled = false;  // what arrives meanwhile merges, and schedules a drain that waits here again
            }
            target.drainHandler(v -> drain());
            return;
        }
        int accepted;
        Delta[] deltas;
        Final last;
        CreditGate.Meter lastMeter;
        synchronized (this) {
            drainScheduled = false;
            accepted = acceptedPrompt;
            acceptedPrompt = -1;
            if (open) {
                sealed.add(takeOpen());
            }
            deltas = sealed.isEmpty() ? NONE : sealed.toArray(NONE);
            sealed.clear();
            last = fin;
            lastMeter = meter;
        }
        if (accepted >= 0) {
            if (!target.gone()) {
                deliveredPrompt = accepted;
            }
            target.accepted(accepted);
        }
        for (Delta delta : deltas) {
            if (!target.gone()) {
                deliveredCompletion += delta.getTokenIdsCount() + delta.getTokensWithoutIds();
            }
            target.delta(delta);
        }
        if (last != null) {
            finished = true;
            boolean lost = target.gone();
            target.finish(last);
            if (lost) {
                lastMeter.delivered(deliveredPrompt, deliveredCompletion);
            }
        }
    }
}
