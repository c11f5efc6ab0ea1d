package org.cocoonjvm.billing.chain;

import org.ton.ton4j.address.Address;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * Turns transfers into the gateway's wallet into account credits. Each {@link #poll} reads the
 * wallet's transactions newer than the last one handled, oldest first, and hands every incoming
 * transfer that carries a text comment to the {@link DepositSink}, once it is {@code confirmation}
 * old. It stops at the first unconfirmed one so that nothing behind it is skipped; a sink that
 * throws leaves that transaction for the next poll. Polls are serialized.
 */
public final class DepositWatcher {
    /** A transfer in, as credited or refused. */
    public record Deposit(
            String comment, long amountNanoton, String txHash, long lt, String from) {}

    /** What one poll did. */
    public record PollResult(
            List<Deposit> credited, List<Deposit> unknownComment, int awaitingConfirmation) {}

    /**
     * @param wallet the gateway wallet that clients pay into
     * @param confirmation how old a transaction must be before it is credited (zero on the
     *     emulator, whose transactions are final at once)
     * @param pageSize transactions read per request
     * @param startAfterLt transactions at or below this logical time are not looked at (0: the
     *     wallet's whole history; safe because the sink credits each transaction once)
     */
    public record Options(Address wallet, Duration confirmation, int pageSize, long startAfterLt) {
        public Options {
            if (confirmation.isNegative())
                throw new IllegalArgumentException(
                        "confirmation can't be negative: " + confirmation);
            if (pageSize < 1 || pageSize > 100)
                throw new IllegalArgumentException("page size must be 1..100: " + pageSize);
            if (startAfterLt < 0)
                throw new IllegalArgumentException(
                        "logical time can't be negative: " + startAfterLt);
        }
    }

    private final ChainClient chain;
    private final DepositSink sink;
    private final Clock clock;
    private final Options options;
    private long handledUpToLt;

    public DepositWatcher(ChainClient chain, DepositSink sink, Clock clock, Options options) {
        this.chain = chain;
        this.sink = sink;
        this.clock = clock;
        this.options = options;
        this.handledUpToLt = options.startAfterLt();
    }

    public synchronized PollResult poll() {
        List<ChainTransaction> fresh = unhandled();
        List<Deposit> credited = new ArrayList<>();
        List<Deposit> unknown = new ArrayList<>();
        long confirmedBefore = clock.instant().minus(options.confirmation()).getEpochSecond();
        for (int i = 0; i < fresh.size(); i++) {
            ChainTransaction tx = fresh.get(i);
            if (tx.utime() > confirmedBefore)
                return new PollResult(credited, unknown, fresh.size() - i);
            deposit(tx)
                    .ifPresent(
                            d -> {
                                switch (sink.credit(d.comment(), d.amountNanoton(), d.txHash())) {
                                    case CREDITED -> credited.add(d);
                                    case UNKNOWN_COMMENT -> unknown.add(d);
                                    case ALREADY_CREDITED -> {}
                                }
                            });
            handledUpToLt = tx.lt();
        }
        return new PollResult(credited, unknown, 0);
    }

    /** The logical time of the newest transaction handled; persist it to resume a later watcher. */
    public synchronized long handledUpToLt() {
        return handledUpToLt;
    }

    private static Optional<Deposit> deposit(ChainTransaction tx) {
        if (!tx.isIncomingTransfer()) return Optional.empty();
        ChainTransaction.Msg in = tx.inMessage().orElseThrow();
        return in.comment()
                .filter(c -> !c.isBlank())
                .map(
                        c ->
                                new Deposit(
                                        c,
                                        in.valueNanoton().longValueExact(),
                                        tx.hash(),
                                        tx.lt(),
                                        in.source()));
    }

    /** Newer than {@link #handledUpToLt}, oldest first, paging back as far as needed. */
    private List<ChainTransaction> unhandled() {
        List<ChainTransaction> out = new ArrayList<>();
        Optional<ChainTransaction> before = Optional.empty();
        while (true) {
            List<ChainTransaction> page =
                    chain.transactions(options.wallet(), options.pageSize(), before);
            long olderThan = before.map(ChainTransaction::lt).orElse(Long.MAX_VALUE);
            boolean reachedHandled = false;
            ChainTransaction oldest = null;
            for (ChainTransaction tx : page) {
                if (tx.lt() >= olderThan) continue; // paging repeats the anchor transaction
                if (tx.lt() <= handledUpToLt) {
                    reachedHandled = true;
                    break;
                }
                out.add(tx);
                oldest = tx;
            }
            if (reachedHandled || oldest == null || page.size() < options.pageSize()) break;
            before = Optional.of(oldest);
        }
        out.sort(Comparator.comparingLong(ChainTransaction::lt));
        return out;
    }
}
