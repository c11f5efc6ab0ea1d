package org.cocoonjvm.gateway.billing;

import java.util.Map;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.RunningFee;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.protocol.grpc.Usage;

/**
 * One relayed attempt's worker fee, as its tokens arrive, and the request's charge that a payment
 * round checkpoints before paying that fee. Written by the relay's event loop only; the billing
 * verticle reads {@link #snapshot}, whose fee never decreases while the request runs.
 */
public final class RequestMeter {
    private final WorkerChannel channel;
    /** The worker this attempt runs on, named with its checkpoints. */
    private final String workerId;
    private final PriceSchedule schedule;
    private final RequestBilling.Charge charge;
    private final RunningFee fee;
    // Written counts first, then the fee; read the fee first, then the counts: the counts read
    // cover at least the tokens of the fee read, so a checkpoint never lags the payment.
    private volatile long promptTokens;
    private volatile long completionTokens;
    private volatile long owed;
    /** The prompt the worker reported, metered with the first token (see {@link #prompt}). */
    private long reportedPrompt;
    private boolean finished;
    /** Set once, on the relay's loop, before the meter joins its channel's finishing set (which publishes it). */
    private Usage finalUsage;
    private long exactFee;
    /**
     * What the client was told it pays, when it was answered before the worker stopped (a gRPC
     * client's own deadline): the charge's checkpoints never go past it, since a settlement charges
     * at least its last checkpoint. The worker's fee still counts every token it sends; those past
     * this usage are the gateway's to pay. Null: the checkpoints follow the fee.
     */
    private volatile Usage clientCap;

    RequestMeter(WorkerChannel channel, String workerId, PriceSchedule schedule, RequestBilling.Charge charge) {
        this.channel = channel;
        this.workerId = workerId;
        this.schedule = schedule;
        this.charge = charge;
        this.fee = new RunningFee(schedule, schedule.workerCoefficient());
    }

    /** The payment channel this attempt's worker fee is owed on. */
    public ChannelId channelId() {
        return channel.id();
    }

    /**
     * The worker admitted the sequence with this many prompt tokens. Not paid for until its first
     * token: a worker that fails before it takes the prompt back (its Final says prompt 0), and a
     * payment round in between would have paid it, and checkpointed it as the client's, already.
     */
    public void prompt(long tokens) {
        reportedPrompt = tokens;
    }

    /** The worker streamed {@code tokens} more tokens. */
    public void completion(long tokens) {
        if (promptTokens != reportedPrompt) {
            promptTokens = reportedPrompt;
            fee.prompt(reportedPrompt);
        }
        completionTokens += tokens;
        owed = fee.addCompletion(tokens);
        channel.metered(tokens);
    }

    /**
     * The attempt ended: the worker is owed its reported usage exactly (null: what was metered,
     * the prompt it reported included, when the stream was cut short). Once; later calls do nothing.
     */
    public void finish(Usage usage) {
        if (finished) {
            return;
        }
        finished = true;
        if (usage == null) {
            finalUsage = usage(reportedPrompt, completionTokens);
            exactFee = fee.prompt(reportedPrompt);
        } else {
            finalUsage = usage;
            exactFee = Pricing.cost(schedule, new TokenCounts(Integer.toUnsignedLong(usage.getPromptTokens()),
                    Integer.toUnsignedLong(usage.getCachedTokens()), Integer.toUnsignedLong(usage.getCompletionTokens()),
                    Integer.toUnsignedLong(usage.getReasoningTokens()))).workerFee();
        }
        channel.finished(this);
    }

    /**
     * The client was told it pays {@code told} and the request is billed that: from now on the
     * worker's further tokens are metered for its fee only, never checkpointed against the client.
     * Call before metering them.
     */
    public void billNoMoreThan(Usage told) {
        clientCap = told;
    }

    /**
     * The running fee, with the usage that covers it added to {@code progress} (no more than the
     * client was told, once it was: then the checkpoint may lag the fee, the rest being the gateway's).
     */
    long snapshot(Map<RequestBilling.Charge, RequestBilling.Metered> progress) {
        long fee = owed;
        Usage used = usage(promptTokens, completionTokens);
        progress.merge(charge, new RequestBilling.Metered(capped(used), channel.id(), workerId), RequestMeter::further);
        return fee;
    }

    /** A finished attempt: its final usage, or no more than the client was told, added to {@code progress}. */
    void checkpoint(Map<RequestBilling.Charge, RequestBilling.Metered> progress) {
        progress.merge(charge, new RequestBilling.Metered(capped(finalUsage), channel.id(), workerId), RequestMeter::further);
    }

    /**
     * {@code used}, each count no higher than the client's cap, the cached and reasoning shares
     * included: the cap is what the client was told, whose split prices it, so a checkpoint keeping
     * the worker's split could price above it under multipliers that are not neutral (review R,
     * Read after the counts, as they are written after it.
     */
    private Usage capped(Usage used) {
        Usage cap = clientCap;
        if (cap == null) {
            return used;
        }
        int prompt = lower(used.getPromptTokens(), cap.getPromptTokens());
        int completion = lower(used.getCompletionTokens(), cap.getCompletionTokens());
        return used.toBuilder().setPromptTokens(prompt).setCompletionTokens(completion)
                .setCachedTokens(lower(lower(used.getCachedTokens(), cap.getCachedTokens()), prompt))
                .setReasoningTokens(lower(lower(used.getReasoningTokens(), cap.getReasoningTokens()), completion))
                .build();
    }

    /** The lower of two uint32 counts. */
    private static int lower(int a, int b) {
        return Integer.compareUnsigned(a, b) <= 0 ? a : b;
    }

    long exactFee() {
        return exactFee;
    }

    /**
     * Two checkpoints of one request (a retried attempt and the next one): the later attempt's,
     * unless it has used less so far. Progress only rises in the ledger anyway.
     */
    static RequestBilling.Metered further(RequestBilling.Metered a, RequestBilling.Metered b) {
        return tokens(a.usage()) >= tokens(b.usage()) ? a : b;
    }

    private static long tokens(Usage usage) {
        return Integer.toUnsignedLong(usage.getPromptTokens()) + Integer.toUnsignedLong(usage.getCompletionTokens());
    }

    private static Usage usage(long prompt, long completion) {
        return Usage.newBuilder().setPromptTokens((int) prompt).setCompletionTokens((int) completion).build();
    }
}
