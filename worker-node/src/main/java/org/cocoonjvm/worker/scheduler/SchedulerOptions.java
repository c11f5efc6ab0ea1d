package org.cocoonjvm.worker.scheduler;

/**
 * @param maxWaiting     admitted requests that may wait for a batch slot; beyond that, OVERLOADED
 * @param prefillChunk   prompt tokens one sequence feeds per step, so long prompts don't stall decoding
 * @param idlePollMillis how long an idle engine thread sleeps between looks at the queue
 */
public record SchedulerOptions(int maxWaiting, int prefillChunk, int idlePollMillis) {
    public static final SchedulerOptions DEFAULTS = new SchedulerOptions(256, 512, 50);

    public SchedulerOptions {
        if (maxWaiting < 1 || prefillChunk < 1 || idlePollMillis < 1) {
            throw new IllegalArgumentException("scheduler options must be positive: " + this);
        }
    }
}
