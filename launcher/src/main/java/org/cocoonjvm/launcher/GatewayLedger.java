package org.cocoonjvm.launcher;

import java.io.UncheckedIOException;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.ledger.GatewayId;
import org.cocoonjvm.billing.ledger.JdbcAccountBook;
import org.cocoonjvm.billing.ledger.LeaseHeldException;
import org.cocoonjvm.billing.ledger.LeaseHolder;
import org.cocoonjvm.billing.ledger.LeaseKeeper;
import org.cocoonjvm.billing.ledger.LeaseLostException;
import org.cocoonjvm.billing.ledger.LeaseStart;
import org.cocoonjvm.billing.ledger.LedgerUnavailableException;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.billing.PendingJournal;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A gateway's start on its ledger, from {@link GatewayPolicy}'s ledger flags: the lease taken (or
 * the start refused, saying why and the ways out), the last run's kept settlements replayed and
 * its open reservations recovered, the lease's heartbeat and the fence that ends the process once
 * the lease is lost, the keys' accounts opened; and the close that releases the lease, or keeps it
 * for the settlements still owed. Apart from the flags because each step's order is a finding of
 * its own (audits N, Q, S, U), and reads as one sequence here.
 */
final class GatewayLedger {
    private static final Logger log = LoggerFactory.getLogger(GatewayLedger.class);
    /** EX_TEMPFAIL: the process stopped because another one took its place; a supervisor should start it again. */
    static final int EXIT_LEASE_LOST = 75;

    private final String ledgerUrl;
    private final String gatewayId;
    private final long leaseExpirySeconds;
    private final boolean takeOver;
    private final long pricePerToken;
    private final long workerFeePerToken;

    /** @param ledgerUrl {@code --ledger}; null: the command's default */
    GatewayLedger(String ledgerUrl, String gatewayId, long leaseExpirySeconds, boolean takeOver, long pricePerToken,
                  long workerFeePerToken) {
        this.ledgerUrl = ledgerUrl;
        this.gatewayId = gatewayId;
        this.leaseExpirySeconds = leaseExpirySeconds;
        this.takeOver = takeOver;
        this.pricePerToken = pricePerToken;
        this.workerFeePerToken = workerFeePerToken;
    }

    /**
     * The gateway's billing, its payment channels' journal (in the same database: the payment key
     * and the channels' last states survive a restart), and the ledger behind both; close
     * {@code ledger} after the gateway has stopped. {@code accounts} and {@code ledgerThreads} are
     * for the deposit watcher, which credits on the same threads as requests are billed.
     *
     * @param fence what the gateway does once its lease is found lost: {@link Fence#beforeExit} adds the node's part
     */
    record Billing(RequestBilling billing, ChannelJournal channels, AutoCloseable ledger, JdbcAccountBook accounts,
                   Executor ledgerThreads, Fence fence) {
        /**
         * The longest {@code ledger}'s close takes once the gateway has stopped: the lease keeper's
         * and the ledger threads' ends (5 s each) and the release's transaction (the connection's
         * 10 s socket timeout), with room for the deposit and keys watchers closed before it.
         */
        static final Duration LEDGER_CLOSE = Duration.ofSeconds(30);

        /**
         * Records on the ledger that this gateway is stopping (SIGTERM) and releases its lease within
         * {@code gatewayStopped} plus {@link #LEDGER_CLOSE}: a restart with its --gateway-id
         * meanwhile waits for the release instead of being refused (audit Q-8).
         */
        void stopping(Duration gatewayStopped) {
            accounts.markStopping(gatewayStopped.plus(LEDGER_CLOSE));
        }
    }

    /**
     * Another gateway ended this one's requests (its lease had expired), or another process took
     * its id: what it meters from now on is billed to nobody, so it must not serve or pay. Stop
     * serving at once, then exit (shutdown hooks close as for SIGTERM) and let a supervisor start a
     * new incarnation, which recovers what is left.
     */
    static final class Fence {
        private volatile Runnable stopServing = () -> { };

        /** @param stopServing runs once the lease is found lost, before the exit: the node cuts what it runs */
        void beforeExit(Runnable stopServing) {
            this.stopServing = stopServing;
        }

        /** On its own thread: the hooks close the lease keeper, or the ledger call, that calls this. */
        void lost(LeaseLostException e) {
            // A stop already under way (SIGTERM) keeps its own exit status: System.exit waits for it.
            log.error("ledger: {}; exiting with code {} (or the signal's, if already stopping)", e.getMessage(), EXIT_LEASE_LOST);
            Thread.ofPlatform().name("lease-lost").start(() -> {
                stopServing.run();
                System.exit(EXIT_LEASE_LOST);
            });
        }
    }

    /**
     * {@link #open(GatewayOptions, GatewayPolicy.Funding, String, PendingJournal, String, Runnable) The billing},
     * taken while holding {@code ports}: let go while the start waits for a stopping holder of the
     * lease (audit S, S-1: held, they took connections nothing answered), and held again once it has
     * the lease; if another process took one meanwhile, the ledger is closed and the start fails on it.
     *
     * @param dataDirId the {@link DirLock#id() id} of the data dir this process holds locked; null: none
     */
    Billing open(Ports ports, GatewayOptions options, GatewayPolicy.Funding funding, String defaultLedgerUrl,
                 PendingJournal pending, String dataDirId) {
        Billing billing = open(options, funding, defaultLedgerUrl, pending, dataDirId, ports::letGo);
        try {
            ports.holdAgain();
        } catch (Cocoon.StartFailure e) {
            try {
                billing.ledger().close();
            } catch (Exception closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
        return billing;
    }

    /**
     * Opens the ledger as {@code --gateway-id} (taking its lease), settles what this gateway's
     * previous run left open (at its last checkpoint), starts the lease's heartbeat and sweep,
     * opens each key's account and credits {@code funding}'s start grant once per account.
     *
     * @param defaultLedgerUrl the ledger when {@code --ledger} is not given
     * @param pending          the settlements the ledger did not take, kept for the next start:
     *                         replayed here before the recovery (audit N, N-4)
     * @param dataDirId        what the lease records of this process's data dir (see {@link
     *                         JdbcAccountBook#open(String, Clock, int, GatewayId, Duration, boolean, Runnable, String)})
     * @param waiting          runs if the lease's holder is stopping and the start waits for it (ibid.)
     */
    private Billing open(GatewayOptions options, GatewayPolicy.Funding funding, String defaultLedgerUrl,
                         PendingJournal pending, String dataDirId, Runnable waiting) {
        String url = ledgerUrl != null ? ledgerUrl : defaultLedgerUrl;
        GatewayId gateway;
        try {
            gateway = new GatewayId(gatewayId);
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--gateway-id: " + e.getMessage());
        }
        if (leaseExpirySeconds < 30) {
            throw new Cocoon.UsageException("--lease-expiry-seconds: at least 30 (six heartbeats), got " + leaseExpirySeconds);
        }
        JdbcAccountBook accounts;
        try {
            accounts = JdbcAccountBook.open(url, Clock.systemUTC(), JdbcAccountBook.DEFAULT_POOL_SIZE, gateway,
                    Duration.ofSeconds(leaseExpirySeconds), takeOver, waiting, dataDirId);
        } catch (IllegalArgumentException e) {
            throw new Cocoon.UsageException("--ledger: " + e.getMessage());
        } catch (LedgerUnavailableException e) {
            throw new Cocoon.StartFailure(e.getMessage() + rootCause(e), e);
        } catch (LeaseHeldException e) {
            throw new Cocoon.StartFailure(leaseHeld(e), e);
        }
        LeaseStart start = accounts.leaseStart();
        if (start.how() == LeaseStart.How.TAKEN_OVER) {
            log.warn("ledger: --take-over: took gateway {}'s lease (epoch {}) from {}; that process is fenced: its running "
                    + "requests end at their last checkpoint and it exits", gateway, start.epoch(), start.previous());
        } else if (start.how() != LeaseStart.How.FIRST) {
            log.info("ledger: took gateway {}'s lease (epoch {}); its previous holder: {}", gateway, start.epoch(), start.previous());
        }
        // First: the recovery would end their reservations at the last checkpoints, not at what their clients were told.
        try {
            pending.replay(accounts);
        } catch (LedgerUnavailableException | UncheckedIOException e) {
            // They may be in it: released, the lease would let a peer's sweep end their reservations
            // at their checkpoints before a start could bill them as told (review U, U-3; R-1 at a stop).
            accounts.keepLeaseAtClose();
            accounts.close();
            throw new Cocoon.StartFailure("could not settle the settlements the last run kept in " + pending.file().orElseThrow()
                    + " (they stay there for the next start): " + e.getMessage(), e);
        }
        // One thread per connection: the ledger's calls block on JDBC and must stay off the event loops.
        ExecutorService ledgerThreads = Executors.newFixedThreadPool(JdbcAccountBook.DEFAULT_POOL_SIZE,
                Thread.ofPlatform().name("ledger-", 1).daemon().factory());
        TonRequestBilling billing = new TonRequestBilling(accounts, ledgerThreads,
                model -> PriceSchedule.of(model, pricePerToken, workerFeePerToken), funding.depositAddress(), pending);
        // Through the billing: what this process bills, its node logs and counts (audit V, V-8).
        List<RecoveredReservation> recovered = billing.recoverOpenReservations();
        if (!recovered.isEmpty()) {
            log.info("ledger: ended {} reservations left open by gateway {}'s previous holder ({}) at their last checkpoint, "
                    + "charging {} nanoTON", recovered.size(), gateway, start.previous(),
                    recovered.stream().mapToLong(r -> r.settlement().chargedNanoton()).sum());
        }
        Fence fence = new Fence();
        LeaseKeeper lease = LeaseKeeper.start(accounts, LeaseKeeper.DEFAULT_INTERVAL, fence::lost, billing::swept);
        ClientKeys.positionalAccounts(accounts).ifPresent(log::warn);
        funding.openAccounts(accounts, options.apiKeys().values());
        return new Billing(billing, accounts.channelJournal(), () -> {
            lease.close();
            billing.close();
            ledgerThreads.shutdown();
            // Decided once the ledger threads are done (review U, N-1): a relay hands its settlement to
            // them and is gone, and one still running could fail into the journal after the count.
            boolean settled = ledgerThreads.awaitTermination(5, TimeUnit.SECONDS);
            if (!settled || billing.settlementsPending() > 0) {
                // The deadline is the one thing the operator can act on (audit S, S-6): past it, the
                // clients were told more than they are charged.
                log.warn("ledger: gateway {}'s lease is left to expire, not released: released, another gateway's sweep "
                        + "would end the reservations of the settlements kept for the next start{} at their last checkpoints"
                        + " first. Start this gateway again before its lease expires at {} (its last renewal + {} s), or, if the"
                        + " ledger is unreachable until after then, within about 10 s of its return: after that a peer's sweep"
                        + " (on a shared ledger) ends them at their checkpoints (charged less than the clients were told). The next"
                        + " start with this --data-dir takes the lease at once; one without it is refused until the expiry, or"
                        + " fences this gateway's lease with --take-over (its recovery then bills them at their checkpoints)",
                        gateway, settled ? "" : " (and of those still being written after 5 s)", accounts.leaseExpiresAt(),
                        leaseExpirySeconds);
                accounts.keepLeaseAtClose();
            }
            accounts.close();
        }, accounts, ledgerThreads, fence);
    }

    /**
     * One line for a start refused because a live process holds the lease (audit N-3), with the
     * ways out. A holder that is stopping was waited for (audit Q-8): refused, it overran its stop.
     */
    private static String leaseHeld(LeaseHeldException e) {
        long expiresIn = Math.max(1, LeaseHeldException.seconds(e.expiresIn()));
        if (e.keptAt() != null) {
            // Gone, on purpose (review U, U-4): nothing to stop, nothing to wait for but the expiry.
            return "--gateway-id " + e.gateway() + " is in use: " + e.holder() + " stopped at " + e.keptAt() + " and left its"
                    + " lease to expire (renewed " + LeaseHeldException.seconds(e.renewedAgo()) + " s ago) for the settlements it"
                    + " kept for its next start in its --data-dir. Start this gateway with that --data-dir to bill them as"
                    + " their clients were told, or wait " + expiresIn + " s for the lease to expire (a peer's sweep then bills"
                    + " them at their last checkpoints), or pass --take-over (this start's recovery bills them so)";
        }
        String renewed = LeaseHeldException.seconds(e.renewedAgo()) + " s ago (" + e.renewedAt() + ")";
        // Its pid is another process's here, or none's: say why this start cannot tell (review U, U-2).
        String unseen = e.holder().inAnotherPidNamespaceOfThisHost() ? " (its pid is of another PID namespace than this"
                + " process's, " + LeaseHolder.current().pidNamespace() + ", so this start cannot see whether it runs)" : "";
        String holder = e.stoppingUntil() == null
                ? "its lease was renewed " + renewed + " by " + e.holder() + unseen + ", which may be serving. Stop that gateway "
                        + "(a clean stop releases the lease)"
                : "its lease is held by " + e.holder() + unseen + ", which began to stop and was to release it by "
                        + e.stoppingUntil() + ", but has not (it renewed it " + renewed + ") and may be stuck. Stop it (kill it"
                        + " if it does not exit)";
        return "--gateway-id " + e.gateway() + " is in use: " + holder + ", wait " + expiresIn
                + " s for its lease to expire if it is gone, start this one with another --gateway-id, or pass --take-over to "
                + "fence it (its running requests end at their last checkpoint and it exits with code " + EXIT_LEASE_LOST + ")";
    }

    /**
     * What the driver's exception wraps, when it says more: PostgreSQL's "The connection attempt
     * failed." does not name the unknown host or the refused connection that made it fail.
     */
    private static String rootCause(LedgerUnavailableException e) {
        Throwable root = e.getCause();
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root == e.getCause() ? "" : " (" + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
    }
}
