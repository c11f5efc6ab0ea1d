package org.cocoonjvm.gateway.billing;

import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.RunningFee;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.protocol.grpc.Usage;

/**
 * One relayed attempt's worker fee, as its tokens arrive. Written by the relay's event loop only;
 * the billing verticle reads {@link #owed()}, which never decreases while the request runs.
 */
public final class RequestMeter {
    private final WorkerChannel channel;
    private final PriceSchedule schedule;
    private final RunningFee fee;
    private volatile long owed;
    private boolean finished;

    RequestMeter(WorkerChannel channel, PriceSchedule schedule) {
        this.channel = channel;
        this.schedule = schedule;
        this.fee = new RunningFee(schedule, schedule.workerCoefficient());
    }

    /** The worker admitted the sequence with this many prompt tokens. */
    public void prompt(long tokens) {
        owed = fee.prompt(tokens);
        channel.metered(0);
    }

    /** The worker streamed {@code tokens} more tokens. */
    public void completion(long tokens) {
        owed = fee.addCompletion(tokens);
        channel.metered(tokens);
    }

    /**
     * The attempt ended: the worker is owed its reported usage exactly (null: what was metered,
     * when the stream was cut short). Once; later calls do nothing.
     */
    public void finish(Usage usage) {
        if (finished) {
            return;
        }
        finished = true;
        long exact = usage == null ? fee.fee() : Pricing.cost(schedule, new TokenCounts(
                Integer.toUnsignedLong(usage.getPromptTokens()), Integer.toUnsignedLong(usage.getCachedTokens()),
                Integer.toUnsignedLong(usage.getCompletionTokens()), Integer.toUnsignedLong(usage.getReasoningTokens()))).workerFee();
        channel.finished(this, exact);
    }

    long owed() {
        return owed;
    }
}
