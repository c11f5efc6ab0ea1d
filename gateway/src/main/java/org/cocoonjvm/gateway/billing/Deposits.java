package org.cocoonjvm.gateway.billing;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.CreditConflictException;
import org.cocoonjvm.billing.chain.ChainClient;
import org.cocoonjvm.billing.chain.DepositSink;
import org.cocoonjvm.billing.chain.DepositWatcher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * Credits client deposits from the chain: every {@code pollInterval} a thread of its own runs
 * ton-billing's {@link DepositWatcher} over the gateway's wallet, and each confirmed transfer whose
 * comment is an account's deposit comment is credited to that account, with the transaction hash
 * as the reference (so a rescan, or a restart that rescans the wallet's history, credits nothing
 * twice). Polling blocks on HTTP and the ledger's calls run on the ledger's executor: neither ever
 * touches an event loop.
 *
 * <p>Nothing about a deposit is dropped silently: a transfer with a comment no account has is
 * logged and counted (its coins stay in the wallet for the operator), a failing poll is retried at
 * the next tick from the same transaction, and logged when the failures start, once a minute while
 * they last, and when a poll works again.
 */
public final class Deposits implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Deposits.class);
    /** An API down for hours fails a poll every tick: the log says so when it starts and then this often. */
    static final Duration FAILURE_LOG_EVERY = Duration.ofMinutes(1);

    /**
     * @param pollInterval how long between the end of one poll and the start of the next
     * @param confirmation how old (by the chain's clock) a transfer must be before it is credited
     */
    public record Options(Duration pollInterval, Duration confirmation) {
        public Options {
            if (pollInterval.isNegative() || pollInterval.isZero()) {
                throw new IllegalArgumentException("the deposit poll interval must be positive: " + pollInterval);
            }
            if (confirmation.isNegative()) {
                throw new IllegalArgumentException("the deposit confirmation can't be negative: " + confirmation);
            }
        }
    }

    private final AccountBook accounts;
    private final Executor ledger;
    private final DepositWatcher watcher;
    private final ScheduledExecutorService poller;
    private final Counter credited;
    private final Counter creditedNanoton;
    private final Counter unknownComments;
    private final Counter conflicts;
    private final Counter pollFailures;
    private final AtomicLong lastPollEpochSecond = new AtomicLong();
    private final AtomicInteger awaitingConfirmation = new AtomicInteger();
    private final Clock clock;
    /** When the polls began to fail, and when that was last logged; null while they work. On the poller's thread only. */
    private Instant failingSince;
    private Instant failureLogged;

    /**
     * @param wallet the gateway's wallet that clients pay into
     * @param ledger runs the book's calls (the gateway's ledger pool)
     * @param clock  the chain's clock: confirmation ages are measured against transaction times
     */
    public Deposits(ChainClient chain, Address wallet, AccountBook accounts, Executor ledger, Clock clock,
                    Options options, MeterRegistry meters) {
        this.accounts = Objects.requireNonNull(accounts, "accounts");
        this.ledger = Objects.requireNonNull(ledger, "ledger");
        this.clock = clock;
        // From the wallet's first transaction at every start: credit() refuses a reference twice.
        this.watcher = new DepositWatcher(chain, this::credit, clock,
                new DepositWatcher.Options(wallet, options.confirmation(), 50, 0));
        this.credited = Counter.builder("cocoon.deposits.credited")
                .description("Deposits from the chain credited to a client account").register(meters);
        this.creditedNanoton = Counter.builder("cocoon.deposits.credited.nanoton")
                .description("nanoTON credited from deposits").register(meters);
        this.unknownComments = Counter.builder("cocoon.deposits.unknown.comment")
                .description("Transfers into the gateway wallet whose comment names no account (left for the operator)")
                .register(meters);
        this.conflicts = Counter.builder("cocoon.deposits.credit.conflicts")
                .description("Deposits whose transaction hash was already credited differently (never credited)")
                .register(meters);
        this.pollFailures = Counter.builder("cocoon.deposits.poll.failures")
                .description("Polls of the chain that failed and were retried at the next tick").register(meters);
        Gauge.builder("cocoon.deposits.last.poll.seconds", lastPollEpochSecond, AtomicLong::get)
                .description("Unix time of the last complete poll of the gateway wallet (0: none yet)").register(meters);
        Gauge.builder("cocoon.deposits.awaiting.confirmation", awaitingConfirmation, AtomicInteger::get)
                .description("Transactions seen but not yet old enough to credit").register(meters);
        this.poller = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("deposits").daemon().factory());
        poller.scheduleWithFixedDelay(this::pollQuietly, 0, options.pollInterval().toMillis(), TimeUnit.MILLISECONDS);
        log.info("deposits: watching {} every {} (confirmation {})", wallet.toNonBounceable(), options.pollInterval(),
                options.confirmation());
    }

    /** Polls once, on the caller's thread (which must not be an event loop); the timer does the same. */
    public DepositWatcher.PollResult pollNow() {
        DepositWatcher.PollResult result = watcher.poll();
        awaitingConfirmation.set(result.awaitingConfirmation());
        lastPollEpochSecond.set(clock.instant().getEpochSecond());
        return result;
    }

    private void pollQuietly() {
        try {
            pollNow();
            if (failingSince != null) {
                log.info("deposits: polling works again, after failing for {} s", failingSince.until(clock.instant()).toSeconds());
                failingSince = null;
            }
        } catch (RuntimeException e) {
            if (poller.isShutdown()) {
                return;  // interrupted by close(): not a failure of the chain
            }
            pollFailures.increment();
            Instant now = clock.instant();
            if (failingSince == null) {
                failingSince = now;
                failureLogged = now;
                log.warn("deposits: poll failed, retrying at every tick and logging this again only once a minute while "
                        + "it fails: {}", e.getMessage());
            } else if (!now.isBefore(failureLogged.plus(FAILURE_LOG_EVERY))) {
                failureLogged = now;
                log.warn("deposits: polls have failed for {} s, still retrying: {}", failingSince.until(now).toSeconds(),
                        e.getMessage());
            } else {
                log.debug("deposits: poll failed again: {}", e.getMessage());
            }
        }
    }

    private DepositSink.Outcome credit(String comment, long amountNanoton, String txHash) {
        try {
            return CompletableFuture.supplyAsync(() -> creditOnLedger(comment, amountNanoton, txHash), ledger).join();
        } catch (CompletionException e) {
            throw e.getCause() instanceof RuntimeException cause ? cause : e;
        }
    }

    private DepositSink.Outcome creditOnLedger(String comment, long amountNanoton, String txHash) {
        // Comments are lower-case, and clients retype them into wallet apps: a comment that differs
        // only in case or surrounding spaces is the same account's, not coins left in the wallet.
        Optional<Account> account = accounts.accountByDepositComment(comment.strip().toLowerCase(Locale.ROOT));
        if (account.isEmpty()) {
            unknownComments.increment();
            log.warn("deposits: {} nanoTON in transaction {} carry the comment '{}', which no account has; left in the wallet",
                    amountNanoton, txHash, comment);
            return DepositSink.Outcome.UNKNOWN_COMMENT;
        }
        String accountId = account.get().accountId();
        try {
            if (!accounts.credit(accountId, amountNanoton, txHash)) {
                return DepositSink.Outcome.ALREADY_CREDITED;
            }
        } catch (CreditConflictException e) {
            // Retrying can't change what the reference was first credited with, and refusing to move
            // on would hold up every later deposit: count it, log it, and pass it by uncredited.
            conflicts.increment();
            log.error("deposits: transaction {} not credited: {}", txHash, e.getMessage());
            return DepositSink.Outcome.ALREADY_CREDITED;
        }
        credited.increment();
        creditedNanoton.increment(amountNanoton);
        log.info("deposits: credited {} nanoTON to {} (transaction {})", amountNanoton, accountId, txHash);
        return DepositSink.Outcome.CREDITED;
    }

    /**
     * Stops polling, interrupting a poll in progress: shutdown must fit the gateway's budget, and
     * whatever that poll had not credited yet is found again by the next start's rescan.
     */
    @Override
    public void close() throws InterruptedException {
        poller.shutdownNow();
        poller.awaitTermination(5, TimeUnit.SECONDS);
    }
}
