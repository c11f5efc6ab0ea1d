package org.cocoonjvm.gateway.billing;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * What {@code /metrics} shows of the rounds and the money owed, read from any thread. The
 * absent workers' unpaid sum is taken at every round (each period at least): an attached
 * worker's unpaid money is the next round's, an absent one's waits for it to come back.
 *
 * <p>Its own file, not {@link ChannelBilling}'s nested class: the metrics package reads it, and
 * the verticle and the parts it owns ({@link PaymentRounds}, {@link OpenChannels},
 * {@link OnChainReads}, {@link ChannelOpening}) each count into it through the package-private
 * counters here.
 */
public final class PaymentStats {
    private final AtomicLong roundsPaid = new AtomicLong();
    private final AtomicLong roundsFailed = new AtomicLong();
    private final AtomicLong unpaidAbsent = new AtomicLong();
    private final AtomicLong absentChannels = new AtomicLong();
    private final AtomicLong openedOnChain = new AtomicLong();
    private final AtomicLong closedCooperatively = new AtomicLong();
    private final AtomicLong closedWithoutGateway = new AtomicLong();
    private final AtomicLong closesStartedOutside = new AtomicLong();
    private final AtomicLong depositsNanoton = new AtomicLong();
    private volatile Consumer<String> openRefused = reason -> { };

    public long roundsPaid() {
        return roundsPaid.get();
    }

    public long roundsFailed() {
        return roundsFailed.get();
    }

    public long unpaidAbsentNanoton() {
        return unpaidAbsent.get();
    }

    /** Open channels whose worker has no session. */
    public long absentChannels() {
        return absentChannels.get();
    }

    /** New channels whose contract was deployed, funded and opened on chain. */
    public long openedOnChain() {
        return openedOnChain.get();
    }

    /** Cooperative closes signed (the worker sends each on chain). */
    public long closedCooperatively() {
        return closedCooperatively.get();
    }

    /**
     * Uncooperative closes started on chain with this gateway's payer key, which its own code
     * never does: reported by their workers, confirmed on chain. Any is worth an alert.
     */
    public long closesStartedOutside() {
        return closesStartedOutside.get();
    }

    /** Channels found closed on chain without this gateway (the worker's uncooperative close). */
    public long closedWithoutGateway() {
        return closedWithoutGateway.get();
    }

    /**
     * The deposit cap of each open on-chain channel known to be funded: opened since start, or
     * holding signed states. Taken at every round, like the absent figures; no chain call.
     */
    public long depositsNanoton() {
        return depositsNanoton.get();
    }

    /** {@code count} is called with the reason code of each channel that could not be opened on chain. */
    public void onOpenRefused(Consumer<String> count) {
        openRefused = count;
    }

    void countOpenRefused(String code) {
        openRefused.accept(code);
    }

    void countOpenedOnChain() {
        openedOnChain.incrementAndGet();
    }

    void countRoundPaid() {
        roundsPaid.incrementAndGet();
    }

    void countRoundFailed() {
        roundsFailed.incrementAndGet();
    }

    void countClosedCooperatively() {
        closedCooperatively.incrementAndGet();
    }

    void countClosedWithoutGateway() {
        closedWithoutGateway.incrementAndGet();
    }

    void countCloseStartedOutside() {
        closesStartedOutside.incrementAndGet();
    }

    /** The figures {@link OpenChannels#tally} takes after each round, each set on its own. */
    void tallied(long unpaidAbsentNanoton, long absentChannelCount, long deposits) {
        unpaidAbsent.set(unpaidAbsentNanoton);
        absentChannels.set(absentChannelCount);
        depositsNanoton.set(deposits);
    }
}
