package org.cocoonjvm.gateway.billing;

import org.cocoonjvm.billing.channel.ChannelJournal;

/**
 * What this gateway paid one worker's payment key over every channel it opened for it, for
 * {@code /admin/workers}. The billing of a worker's current channel starts from 0 again after each
 * close at the worker's threshold; these totals are what an operator reconciles with the worker's
 * lifetime {@code /earnings} (audit P, P-8).
 *
 * @param channels        every channel, open and closed
 * @param closedChannels  those the journal records closed: their close was delivered, or found settled on chain
 * @param sentNanoton     the last state signed on each channel, summed: the worker's {@code earned_nanoton}
 * @param paidOutNanoton  the last states of the closed ones: what their closes paid the worker, its
 *                        {@code paid_out_nanoton}
 */
public record WorkerLifetime(long channels, long closedChannels, long sentNanoton, long paidOutNanoton) {
    static final WorkerLifetime NONE = new WorkerLifetime(0, 0, 0, 0);

    static WorkerLifetime closed(ChannelJournal.ClosedTotals closed) {
        return new WorkerLifetime(closed.channels(), closed.channels(), closed.sentNanoton(), closed.sentNanoton());
    }

    /** These and one more open channel, whose last state sent {@code sent}. */
    WorkerLifetime plusOpen(long sent) {
        return new WorkerLifetime(channels + 1, closedChannels, sentNanoton + sent, paidOutNanoton);
    }
}
