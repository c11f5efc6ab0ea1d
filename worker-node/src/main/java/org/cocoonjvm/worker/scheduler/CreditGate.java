package org.cocoonjvm.worker.scheduler;

import org.cocoonjvm.protocol.grpc.GenerateRequest;

/**
 * Who pays for a sequence, and whether they are paying: the scheduler asks it for each sequence's
 * {@link Meter} at submission, tells the meter about every token, and skips a sequence in its step
 * plan while the meter says {@link Meter#paused()}. A sequence paused longer than
 * {@link #pauseLimitNanos()} fails with a {@code payment_overdue} error. The forwarder
 * ({@code OpenAiForwarder}) does the same, holding its upstream's stream where the scheduler skips.
 */
public interface CreditGate {
    /** Nobody pays and nothing pauses: a worker without payment channels. */
    CreditGate NONE = new CreditGate() {
        @Override
        public Meter meter(GenerateRequest request) {
            return Meter.FREE;
        }

        @Override
        public void onPayment(Runnable wake) {
        }

        @Override
        public long pauseLimitNanos() {
            return Long.MAX_VALUE;
        }
    };

    /**
     * The meter of a new sequence. Runs on the submitting thread.
     *
     * @throws GenerationException when the request cannot be paid for (e.g. an unknown channel)
     */
    Meter meter(GenerateRequest request);

    /** {@code wake} is run (from any thread) whenever a payment arrives, so a paused scheduler resumes. */
    void onPayment(Runnable wake);

    long pauseLimitNanos();

    /**
     * One sequence's share of its channel. Called from one thread at a time: the engine thread, or
     * a forwarded request's event loop.
     */
    interface Meter {
        Meter FREE = new Meter() {
            @Override
            public void prompt(int tokens) {
            }

            @Override
            public void completion(int tokens) {
            }

            @Override
            public boolean paused() {
                return false;
            }

            @Override
            public String overdue() {
                return "";
            }

            @Override
            public void ended() {
            }

            @Override
            public void delivered(int promptTokens, long completionTokens) {
            }
        };

        /** The sequence was admitted with this many prompt tokens. */
        void prompt(int tokens);

        /** It generated {@code tokens} more (0: text with no token count of its own, which still starts its output). */
        void completion(int tokens);

        /** The sequence ended, whichever way: what it metered is final. */
        void ended();

        /**
         * Its Final never went out: the stream was gone before (reset by the gateway, or its
         * connection lost). The gateway then bills and pays its own count, of what reached it:
         * {@code promptTokens} (0 when its Accepted did not go out either) and
         * {@code completionTokens}; what was metered beyond will never be paid. Once, after
         * {@link #ended()}, on the output's context.
         */
        void delivered(int promptTokens, long completionTokens);

        /** Its channel owes more than the credit window: don't step it. */
        boolean paused();

        /** The error for a sequence that stayed paused past the limit; starts with {@code payment_overdue:}. */
        String overdue();
    }
}
