package org.cocoonjvm.worker.payments;

import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.RunningFee;
import org.cocoonjvm.worker.scheduler.CreditGate;

/**
 * One sequence's fee, added to its channel's earnings token by token; from one thread at a time
 * (the engine's, or a forwarded request's event loop).
 */
final class ChannelMeter implements CreditGate.Meter {
    private final ChannelAccount account;
    private final PriceSchedule schedule;
    private final RunningFee fee;
    private final long timeoutMs;
    private final Unbilled unbilled;
    private long counted;
    /** What this sequence holds in {@link ChannelAccount#awaitingFirstToken}: its prompt's fee until its first token. */
    private long awaiting;
    private boolean producing;
    private boolean ended;

    ChannelMeter(ChannelAccount account, PriceSchedule schedule, long timeoutMs, Unbilled unbilled) {
        this.account = account;
        account.running.incrementAndGet();
        this.schedule = schedule;
        this.fee = new RunningFee(schedule, schedule.workerCoefficient());
        this.timeoutMs = timeoutMs;
        this.unbilled = unbilled;
    }

    @Override
    public void prompt(int tokens) {
        add(fee.prompt(tokens));
        if (!producing) {
            awaiting(counted);  // no token yet: all it has earned is its prompt
        }
    }

    @Override
    public void completion(int tokens) {
        if (!producing) {
            producing = true;
            awaiting(0);
        }
        add(fee.addCompletion(tokens));
    }

    @Override
    public void ended() {
        producing = true;
        awaiting(0);
        if (!ended) {
            ended = true;
            account.running.decrementAndGet();
        }
    }

    /**
     * The channel counts what the gateway bills, as the gateway counts it (its RequestMeter's fee of
     * a stream cut short): the tokens that never reached it are written off, so that its unpaid
     * amount is what the gateway will still pay, and falls to 0 once it has. Never less than what
     * went out on the stream, whatever became of it there.
     */
    @Override
    public void delivered(int promptTokens, long completionTokens) {
        RunningFee billed = new RunningFee(schedule, schedule.workerCoefficient());
        billed.prompt(promptTokens);
        long owed = billed.addCompletion(completionTokens);
        unbilled.add(fee.tokens().completion() - completionTokens, counted - owed);
        add(owed);
    }

    private void awaiting(long fee) {
        account.awaitingFirstToken.addAndGet(fee - awaiting);
        awaiting = fee;
    }

    private void add(long total) {
        account.earned.addAndGet(total - counted);
        counted = total;
    }

    @Override
    public boolean paused() {
        // A channel closing on chain pays nothing made from here (audit Z, Z-2).
        return account.overdrawn() || account.quarantined();
    }

    @Override
    public String overdue() {
        if (account.quarantined()) {
            return "payment_overdue: channel " + account.terms().channelId() + " is closing on chain: nothing this "
                    + "sequence makes from here would be paid";
        }
        return "payment_overdue: the gateway owes " + account.unpaid() + " nanoTON on channel "
                + account.terms().channelId() + ", more than the credit window of " + account.window()
                + " nanoTON, and did not pay it down within " + timeoutMs + " ms";
    }
}
