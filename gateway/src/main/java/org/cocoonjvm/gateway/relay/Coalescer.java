package org.cocoonjvm.gateway.relay;

import org.cocoonjvm.protocol.grpc.Delta;

/**
 * A relay's deltas on their way to the client, and what a slow reader leaves waiting: the one
 * merged pending delta (vLLM's single-slot mailbox), whether the worker's stream is paused for it,
 * and the stall timer. Apart from {@link Relay} because it is the one piece of state the client's
 * socket drives (its drain) rather than the worker; its fast path, a delta written at once, is a
 * field test and a call. Owned by the relay's event loop, as the relay is.
 */
final class Coalescer {
    private final Relay relay;
    /** The merged text waiting for the client; null while nothing waits. */
    private StringBuilder pendingText;
    /** The pending text's tokens, so that a merged delta still counts them. */
    private final Delta.Builder pendingTokens = Delta.newBuilder();
    private boolean paused;
    /** The client's reader paused the worker's stream at least once. */
    private boolean readerPaused;
    private EventLoopTimers.Timer stallTimer;

    Coalescer(Relay relay) {
        this.relay = relay;
    }

    /** Passes a delta on: at once while the client reads and nothing waits, else merged into the pending one. */
    void send(Delta delta) {
        if (pendingText == null && !relay.sink.writeQueueFull()) {
            relay.sink.delta(delta);
        } else {
            holdForSlowReader(delta);
        }
    }

    /** The client is slow: merge into one pending delta, and past the bound stop reading the worker. */
    private void holdForSlowReader(Delta delta) {
        if (pendingText == null) {
            relay.sink.drainHandler(v -> flush());
            stallTimer = relay.env.timers().set(relay.env.options().stallTimeoutMs(), v -> relay.stalled());
        }
        pend(delta);
        if (pendingText.length() >= relay.env.options().coalesceBytes() && !paused) {
            paused = true;
            readerPaused = true;
            relay.attempts.stream().pause();
        }
    }

    /** Whether a delta may still be merged without passing {@code coalesceBytes}: what a stopped stream may add. */
    boolean hasRoom() {
        return pendingText == null || pendingText.length() < relay.env.options().coalesceBytes();
    }

    void pend(Delta delta) {
        if (pendingText == null) {
            pendingText = new StringBuilder();
        }
        pendingText.append(delta.getText());
        pendingTokens.addAllTokenIds(delta.getTokenIdsList())
                .setTokensWithoutIds(pendingTokens.getTokensWithoutIds() + delta.getTokensWithoutIds());
    }

    /** Writes the pending delta, if any, and reads the worker on if it was paused for it. */
    void flush() {
        if (pendingText == null || relay.sink.ended()) {
            return;
        }
        EventLoopTimers.cancel(stallTimer);
        stallTimer = null;
        Delta merged = pendingTokens.setText(pendingText.toString()).build();
        pendingTokens.clear();
        pendingText = null;
        relay.sink.delta(merged);
        if (paused && !relay.done) {
            paused = false;
            relay.attempts.stream().resume();
        }
    }

    /** A stop began: the worker's stream is read on to its Final, paused no more. */
    void resume() {
        if (paused) {
            paused = false;
            relay.attempts.stream().resume();
        }
    }

    void cancelStallTimer() {
        EventLoopTimers.cancel(stallTimer);
    }

    boolean readerPaused() {
        return readerPaused;
    }
}
