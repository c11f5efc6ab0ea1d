package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.RequestRecord;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.ReservationRecoveredException;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.accounts.UnknownReservationException;
import org.cocoonjvm.billing.accounts.WorkerShare;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Several gateways on one ledger database: each recovers only its own reservations, a gateway whose
 * lease expired is swept by the live ones and fenced out, two gateways' concurrent traffic on one
 * account keeps the totals exact, deposits seen by both are credited once, and each gateway keeps
 * its own payment key and channels. Subclasses pick the database.
 */
abstract class ClusterLedgerContract {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Duration EXPIRY = Duration.ofSeconds(60);
    private static final GatewayId A = new GatewayId("gw-a");
    private static final GatewayId B = new GatewayId("gw-b");

    protected abstract TestDatabase database();

    private final MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    /** Concurrent: a start that waits for a stopping holder opens its book on a thread of its own. */
    private final List<JdbcAccountBook> opened = new CopyOnWriteArrayList<>();
    private String url;

    private JdbcAccountBook open(GatewayId gateway) {
        if (url == null) {
            url = database().newDatabaseUrl();
        }
        JdbcAccountBook book = JdbcAccountBook.open(url, clock, 4, gateway, EXPIRY);
        opened.add(book);
        return book;
    }

    /** As a start of `cocoon gateway` does: refused while a live process holds the lease, unless {@code takeOver}. */
    private JdbcAccountBook start(GatewayId gateway, boolean takeOver) {
        if (url == null) {
            url = database().newDatabaseUrl();
        }
        JdbcAccountBook book = JdbcAccountBook.open(url, clock, 4, gateway, EXPIRY, takeOver);
        opened.add(book);
        return book;
    }

    /** As {@link #start}, holding the data dir {@code dataDir} locked, as `cocoon gateway` holds its --data-dir. */
    private JdbcAccountBook startHolding(GatewayId gateway, String dataDir, boolean takeOver, Runnable waiting) {
        if (url == null) {
            url = database().newDatabaseUrl();
        }
        JdbcAccountBook book = JdbcAccountBook.open(url, clock, 4, gateway, EXPIRY, takeOver, waiting, dataDir);
        opened.add(book);
        return book;
    }

    /** Whether no other process can open this database (embedded H2): a holder that is not this process is gone. */
    protected abstract boolean exclusive();

    /**
     * Rewrites who holds {@code gateway}'s lease, as another process (or an older build, with a null
     * host) would have; without a PID namespace, as builds before V12 recorded it.
     */
    private void holder(GatewayId gateway, String host, long pid, Instant startedAt) throws Exception {
        holder(gateway, host, pid, startedAt, null);
    }

    private void holder(GatewayId gateway, String host, long pid, Instant startedAt, String pidNamespace) throws Exception {
        try (Connection c = DriverManager.getConnection(url);
             PreparedStatement ps = c.prepareStatement(host == null
                     ? "UPDATE gateway_leases SET holder_host = NULL, holder_pid = NULL, holder_started_at_micros = NULL, "
                             + "holder_pid_namespace = NULL, holder_epoch = NULL WHERE gateway_id = ?"
                     : "UPDATE gateway_leases SET holder_host = ?, holder_pid = ?, holder_started_at_micros = ?, "
                             + "holder_pid_namespace = ?, holder_epoch = epoch WHERE gateway_id = ?")) {
            int i = 1;
            if (host != null) {
                ps.setString(i++, host);
                ps.setLong(i++, pid);
                ps.setLong(i++, Micros.of(startedAt));
                ps.setString(i++, pidNamespace);
            }
            ps.setString(i, gateway.value());
            assertThat(ps.executeUpdate()).isEqualTo(1);
        }
    }

    /** Audit N-3: a second process with a live gateway's id took its lease and ended its running requests. */
    @Test
    void aStartWithTheIdOfALiveGatewayInThisProcess_isRefused_andChangesNothing() {
        JdbcAccountBook live = start(A, false);
        live.open("alice");
        live.credit("alice", 1_000, "tx-1");
        Reservation running = live.reserve("alice", 100);
        clock.advance(Duration.ofSeconds(3));

        assertThatThrownBy(() -> start(A, false)).isInstanceOfSatisfying(LeaseHeldException.class, e -> {
            assertThat(e.holder()).isEqualTo(LeaseHolder.current());
            assertThat(e.renewedAgo()).isEqualTo(Duration.ofSeconds(3));
            assertThat(e.expiresIn()).isEqualTo(EXPIRY.minusSeconds(3));
            assertThat(e.getMessage()).contains("gw-a", "pid " + ProcessHandle.current().pid());
        });

        live.renewLease();
        assertThat(live.epoch()).isEqualTo(1);
        assertThat(live.settle(running, 40)).isEqualTo(new Settlement(running, 40, 60, 0));
    }

    @Test
    void aLiveHolderOnAnotherHost_isRefused_untilItsLeaseExpires_orATakeOver() throws Exception {
        JdbcAccountBook other = start(A, false);
        holder(A, "another-host", 4242, Instant.parse("2026-01-01T00:00:00Z"));
        other.open("alice");
        other.credit("alice", 1_000, "tx-1");
        Reservation running = other.reserve("alice", 100);
        other.recordProgress(running, 7);
        clock.advance(Duration.ofSeconds(10));

        if (exclusive()) {
            // Embedded H2: no other process can have the file open, so that holder is gone.
            assertThat(start(A, false).leaseStart().how()).isEqualTo(LeaseStart.How.HOLDER_GONE);
            return;
        }
        assertThatThrownBy(() -> start(A, false)).isInstanceOfSatisfying(LeaseHeldException.class,
                e -> assertThat(e.holder().toString()).isEqualTo("pid 4242 on another-host"));
        other.renewLease();

        JdbcAccountBook takingOver = start(A, true);
        assertThat(takingOver.leaseStart()).isEqualTo(new LeaseStart(2, LeaseStart.How.TAKEN_OVER, 1,
                new LeaseHolder("another-host", 4242, Instant.parse("2026-01-01T00:00:00Z")), clock.instant()));
        assertThat(takingOver.leaseStart().previous()).contains("epoch 1, pid 4242 on another-host", "taken over");
        assertThat(takingOver.recoverOpenReservations()).extracting(RecoveredReservation::settlement)
                .containsExactly(new Settlement(running, 7, 93, 0));
        assertThatThrownBy(other::renewLease).as("fenced").isInstanceOf(LeaseLostException.class);

        holder(A, "another-host", 4242, Instant.parse("2026-01-01T00:00:00Z"));
        clock.advance(EXPIRY.minusSeconds(1));
        assertThatThrownBy(() -> start(A, false)).as("a second before it expires").isInstanceOf(LeaseHeldException.class);
        clock.advance(Duration.ofSeconds(1));
        assertThat(start(A, false).leaseStart().how()).as("expired").isEqualTo(LeaseStart.How.EXPIRED);
    }

    /** A restart after a crash or a kill on the same host need not wait for the expiry. */
    @Test
    void aRestartOnTheHolderssHost_afterItsProcessIsGone_takesTheLeaseAtOnce() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        JdbcAccountBook crashed = start(A, false);
        crashed.open("alice");
        crashed.credit("alice", 1_000, "tx-1");
        Reservation running = crashed.reserve("alice", 100);
        crashed.recordProgress(running, 12);
        LeaseHolder dead = new LeaseHolder(LeaseHolder.current().host(), gone.pid(), Instant.parse("2026-01-01T00:00:00Z"));
        holder(A, dead.host(), dead.pid(), dead.startedAt());
        clock.advance(Duration.ofSeconds(2));

        JdbcAccountBook restarted = start(A, false);

        assertThat(restarted.leaseStart()).isEqualTo(new LeaseStart(2, LeaseStart.How.HOLDER_GONE, 1, dead,
                clock.instant().minusSeconds(2)));
        assertThat(restarted.leaseStart().previous()).contains("epoch 1, pid " + gone.pid(), "no longer runs");
        assertThat(restarted.recoverOpenReservations()).extracting(RecoveredReservation::settlement)
                .containsExactly(new Settlement(running, 12, 88, 0));

        // A container restarted is often pid 1 again: the same pid, started at another time, is another process.
        LeaseHolder me = LeaseHolder.current();
        holder(A, me.host(), me.pid(), me.startedAt().minusSeconds(3600));
        assertThat(start(A, false).leaseStart().how()).isEqualTo(LeaseStart.How.HOLDER_GONE);
    }

    /**
     * Review R, R-2: one host name, another PID namespace (a host-network container, a container
     * given a fixed host name): the holder's process id names another process here, or none, and
     * says nothing of whether it runs. It may be alive: refused, not fenced.
     */
    @Test
    void aHolderOnThisHostInAnotherPidNamespace_mayBeAlive_andIsNotTakenAsGone() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        start(A, false);
        LeaseHolder me = LeaseHolder.current();
        assertThat(me.pidNamespace()).as("recorded where Linux has one").isEqualTo(LeaseHolder.currentPidNamespace());
        holder(A, me.host(), gone.pid(), Instant.parse("2026-01-01T00:00:00Z"), "pid:[1]");
        if (exclusive()) {
            assertThat(start(A, false).leaseStart().how()).as("an embedded H2 file has no other process")
                    .isEqualTo(LeaseStart.How.HOLDER_GONE);
        } else {
            assertThatThrownBy(() -> start(A, false)).isInstanceOfSatisfying(LeaseHeldException.class, e -> {
                assertThat(e.holder().toString()).as("says why its pid does not count here")
                        .isEqualTo("pid " + gone.pid() + " on " + me.host() + " in PID namespace pid:[1]");
                assertThat(e.holder().inAnotherPidNamespaceOfThisHost()).isEqualTo(me.pidNamespace() != null);
            });
        }
    }

    /**
     * Review U, U-2: a container restarted in place after a crash gets a new PID namespace, so the
     * pid rule above refused it, and it waited for the expiry (900 s). The data dir tells instead:
     * its holder held it locked while it ran, and a start that holds the lock now knows that process
     * is gone, whatever its host or namespace. Another data dir proves nothing.
     */
    @Test
    void aRestartHoldingTheHoldersDataDir_takesTheLeaseAtOnce_whateverItsHostOrPidNamespace() throws Exception {
        JdbcAccountBook crashed = startHolding(A, "data-dir-1", false, () -> { });
        crashed.open("alice");
        crashed.credit("alice", 1_000, "tx-1");
        Reservation running = crashed.reserve("alice", 100);
        crashed.recordProgress(running, 12);
        // As recorded by a process in the container's PID namespace (pid 1), or on a host since renamed.
        holder(A, "gw-pod-0", 1, Instant.parse("2026-01-01T00:00:00Z"), "pid:[4026532180]");
        clock.advance(Duration.ofSeconds(2));

        if (!exclusive()) {
            assertThatThrownBy(() -> startHolding(A, "data-dir-2", false, () -> { })).as("another data dir proves nothing")
                    .isInstanceOf(LeaseHeldException.class);
            assertThatThrownBy(() -> start(A, false)).as("nor does none (the demo)").isInstanceOf(LeaseHeldException.class);
        }
        JdbcAccountBook restarted = startHolding(A, "data-dir-1", false, () -> { });

        assertThat(restarted.leaseStart().how()).isEqualTo(LeaseStart.How.HOLDER_GONE);
        assertThat(restarted.leaseStart().previousHolder()).isEqualTo(new LeaseHolder("gw-pod-0", 1,
                Instant.parse("2026-01-01T00:00:00Z"), "pid:[4026532180]", "data-dir-1"));
        assertThat(restarted.recoverOpenReservations()).extracting(RecoveredReservation::settlement)
                .containsExactly(new Settlement(running, 12, 88, 0));
        assertThatThrownBy(crashed::renewLease).as("fenced").isInstanceOf(LeaseLostException.class);
    }

    @Test
    void aCleanStop_releasesTheLease_forAStartAnywhere() throws Exception {
        JdbcAccountBook stopping = start(A, false);
        holder(A, "another-host", 4242, Instant.parse("2026-01-01T00:00:00Z"));
        opened.remove(stopping);
        stopping.close();

        JdbcAccountBook next = start(A, false);
        assertThat(next.leaseStart().how()).isEqualTo(LeaseStart.How.RELEASED);
        assertThat(next.leaseStart().previous()).contains("pid 4242 on another-host", "stopped cleanly");
        next.renewLease();
    }

    /**
     * Review R, R-1: a gateway that stops with settlements kept for its next start leaves its lease
     * to expire: released, a peer's sweep would end those reservations at their checkpoints first.
     * Audit S, S-6: the stop's warning names when that expiry is, which the book knows from its last
     * renewal.
     */
    @Test
    void aStopThatKeepsSettlements_leavesItsLease_soNoPeerSweepsThem() throws Exception {
        JdbcAccountBook stopping = start(A, false);
        stopping.open("alice");
        stopping.credit("alice", 1_000, "tx-1");
        Reservation kept = stopping.reserve("alice", 100);
        holder(A, "another-host", 4242, Instant.parse("2026-01-01T00:00:00Z"));
        clock.advance(Duration.ofSeconds(3));
        stopping.renewLease();
        Instant deadline = stopping.leaseExpiresAt();
        assertThat(deadline).isEqualTo(clock.instant().plus(EXPIRY));
        opened.remove(stopping);
        stopping.keepLeaseAtClose();
        stopping.close();

        JdbcAccountBook peer = open(B);
        assertThat(peer.sweep()).as("not released: not sweepable before its expiry").isEmpty();
        if (!exclusive()) {   // an embedded H2 file: a holder that is not this process is gone, and its next start may take it
            assertThatThrownBy(() -> start(A, false)).as("a start elsewhere waits for the expiry")
                    .isInstanceOf(LeaseHeldException.class);
        }
        clock.advance(Duration.between(clock.instant(), deadline));
        assertThat(peer.sweep()).as("at the deadline the stop named, not yet").isEmpty();
        clock.advance(Duration.ofSeconds(1));
        assertThat(peer.sweep()).as("past its expiry, as after a crash").singleElement()
                .satisfies(s -> assertThat(s.settlement().reservation().id()).isEqualTo(kept.id()));
    }

    /**
     * Review U, U-4: a stop that kept its lease for its kept settlements had marked itself stopping
     * as its stop began, so a start elsewhere waited the whole bound for a release that would not
     * come, then was refused as if that process were stuck. The close records the keep: the start
     * is refused at once, saying so; with --take-over it takes the lease at once; with the same
     * data dir the holder is known gone.
     */
    @Test
    void aStopThatKeptItsLease_isNotWaitedFor_butRefusedAtOnceSayingWhy() throws Exception {
        JdbcAccountBook stopped = startHolding(A, "data-dir-1", false, () -> { });
        stopped.markStopping(Duration.ofSeconds(30));
        clock.advance(Duration.ofSeconds(5));
        stopped.keepLeaseAtClose();
        opened.remove(stopped);
        stopped.close();
        holder(A, "another-host", 4242, Instant.parse("2026-01-01T00:00:00Z"));   // only its data dir can tell it gone

        if (!exclusive()) {
            AtomicInteger waits = new AtomicInteger();
            long began = System.nanoTime();
            assertThatThrownBy(() -> startHolding(A, "data-dir-2", false, waits::incrementAndGet))
                    .isInstanceOfSatisfying(LeaseHeldException.class, e -> {
                        assertThat(e.keptAt()).isEqualTo(clock.instant());
                        assertThat(e.getMessage()).contains("stopped at " + clock.instant() + ", leaving it to expire for the "
                                + "settlements it kept for its next start").doesNotContain("began to stop");
                    });
            assertThat(waits).as("nothing to wait for: the ports are kept").hasValue(0);
            assertThat(Duration.ofNanos(System.nanoTime() - began)).isLessThan(Duration.ofSeconds(5));
            assertThat(startHolding(A, "data-dir-2", true, waits::incrementAndGet).leaseStart().how())
                    .as("--take-over need not wait for the bound either").isEqualTo(LeaseStart.How.TAKEN_OVER);
            assertThat(waits).hasValue(0);
        } else {
            assertThat(startHolding(A, "data-dir-1", false, () -> { }).leaseStart().how()).isEqualTo(LeaseStart.How.HOLDER_GONE);
        }
        assertThatThrownBy(() -> start(A, false)).as("its new holder serves: the mark went with the take")
                .isInstanceOfSatisfying(LeaseHeldException.class, e -> assertThat(e.keptAt()).isNull());
    }

    /**
     * Audit Q-8: a restart begun while the previous process drains its streams was refused with
     * advice to wait for the expiry or to fence it. Now it waits for the release, even with
     * --take-over, while the stopping holder's requests still settle under its lease, then takes
     * the lease as released; the new holder is not stopping.
     */
    @Test
    void aStartWhileTheHolderIsStopping_waitsForItsRelease_thenTakesTheLease() throws Exception {
        JdbcAccountBook stopping = start(A, false);
        stopping.open("alice");
        stopping.credit("alice", 1_000, "tx-1");
        Reservation draining = stopping.reserve("alice", 100);
        stopping.markStopping(Duration.ofSeconds(30));

        AtomicInteger waits = new AtomicInteger();
        CompletableFuture<JdbcAccountBook> next = CompletableFuture.supplyAsync(() -> {
            JdbcAccountBook book = JdbcAccountBook.open(url, clock, 4, A, EXPIRY, true, waits::incrementAndGet, null);
            opened.add(book);
            return book;
        });
        Thread.sleep(1_500);
        assertThat(next).as("waiting for the release").isNotDone();
        assertThat(waits).as("the caller is told once, as the wait begins (the launcher lets go of its ports)").hasValue(1);
        stopping.renewLease();
        assertThat(stopping.settle(draining, 40)).isEqualTo(new Settlement(draining, 40, 60, 0));
        opened.remove(stopping);
        stopping.close();

        JdbcAccountBook started = next.get(30, TimeUnit.SECONDS);
        assertThat(started.leaseStart().how()).isEqualTo(LeaseStart.How.RELEASED);
        assertThat(started.epoch()).isEqualTo(2);
        assertThat(started.recoverOpenReservations()).isEmpty();
        assertThatThrownBy(() -> start(A, false)).as("refused at once: the new holder serves")
                .isInstanceOfSatisfying(LeaseHeldException.class, e -> assertThat(e.stoppingUntil()).isNull());
    }

    /** A stopping holder that has not released its lease by the bound it gave is stuck: refused, or taken over, as any live one. */
    @Test
    void aStoppingHolderPastItsBound_isRefused_orTakenOver() {
        JdbcAccountBook stuck = start(A, false);
        stuck.markStopping(Duration.ofSeconds(20));
        clock.advance(Duration.ofSeconds(21));

        assertThatThrownBy(() -> start(A, false)).isInstanceOfSatisfying(LeaseHeldException.class, e -> {
            assertThat(e.stoppingUntil()).isEqualTo(clock.instant().minusSeconds(1));
            assertThat(e.getMessage()).contains("began to stop, to release it by " + clock.instant().minusSeconds(1));
        });
        assertThat(start(A, true).leaseStart().how()).isEqualTo(LeaseStart.How.TAKEN_OVER);
        assertThatThrownBy(stuck::renewLease).as("fenced").isInstanceOf(LeaseLostException.class);
    }

    /** Rows written before V10 name no holder: taken at once, as every start did then (an upgrade's restart must not wait). */
    @Test
    void aLeaseWhoseHolderNoBuildRecorded_isTakenAsBefore() throws Exception {
        JdbcAccountBook old = start(A, false);
        holder(A, null, 0, Instant.EPOCH);

        JdbcAccountBook upgraded = start(A, false);

        assertThat(upgraded.leaseStart().how()).isEqualTo(LeaseStart.How.UNRECORDED);
        assertThat(upgraded.leaseStart().previousHolder()).isNull();
        assertThatThrownBy(old::renewLease).isInstanceOf(LeaseLostException.class);
    }

    /**
     * A ledger of a build before V10, whose gateway stopped a second ago (its lease fresh, no holder
     * recorded), upgraded in place: the restart takes the lease at once and recovers what it left,
     * as before; from then on holders are recorded, and a second start is refused.
     */
    @Test
    void aV9LedgerWithAFreshLease_isTakenAtOnceAfterTheUpgrade_thenGuarded() throws Exception {
        url = database().newDatabaseUrl();
        long now = Micros.of(clock.instant());
        try (Connection c = DriverManager.getConnection(url)) {
            Migrations.apply(c, clock, 9);
            c.setAutoCommit(true);
            try (Statement st = c.createStatement()) {
                st.execute("INSERT INTO accounts VALUES ('alice', 'cocoon-aaaaaaaaaaaaaaaa', 0, 1000, 300, 0)");
                st.execute("INSERT INTO credits VALUES ('grant-at-start:alice:1000', 'alice', 1000, 0)");
                st.execute("INSERT INTO reservations (account_id, amount_nanoton, progress_nanoton, state, reserved_at_micros, "
                        + "gateway_id, lease_epoch) VALUES ('alice', 300, 40, 'open', 0, 'gw-a', 7)");
                st.execute("INSERT INTO gateway_leases (gateway_id, epoch, expires_at_micros, renewed_at_micros) VALUES ('gw-a', 7, "
                        + (now + EXPIRY.toNanos() / 1000 - 1_000_000) + ", " + (now - 1_000_000) + ")");
            }
        }

        JdbcAccountBook upgraded = start(A, false);

        assertThat(upgraded.leaseStart()).isEqualTo(new LeaseStart(8, LeaseStart.How.UNRECORDED, 7, null,
                clock.instant().minusSeconds(1)));
        assertThat(upgraded.recoverOpenReservations()).singleElement()
                .satisfies(r -> assertThat(r.settlement().chargedNanoton()).isEqualTo(40));
        assertThat(upgraded.creditOnce("alice", 5_000, "grant-at-start:alice")).as("granted by the older build").isFalse();
        assertThatThrownBy(() -> start(A, false)).isInstanceOf(LeaseHeldException.class);
    }

    /**
     * Audit Q-2: two gateways started at once on an empty ledger both read schema version 0 and ran
     * V1, and the second failed on "relation already exists". Each round, two connections migrate a
     * new database at the same moment: both succeed, and each migration is applied by one of them.
     */
    @Test
    void twoStartsAtOnceOnAnEmptyLedger_applyEachMigrationOnce() throws Exception {
        List<Integer> all = IntStream.rangeClosed(1, Migrations.latest()).boxed().toList();
        ExecutorService threads = Executors.newFixedThreadPool(2);
        try {
            for (int round = 0; round < 8; round++) {
                String fresh = database().newDatabaseUrl();
                CyclicBarrier together = new CyclicBarrier(2);
                Callable<List<Integer>> migrate = () -> {
                    try (Connection c = DriverManager.getConnection(fresh)) {
                        together.await(30, TimeUnit.SECONDS);
                        return Migrations.apply(c, clock);
                    }
                };
                Future<List<Integer>> first = threads.submit(migrate);
                Future<List<Integer>> second = threads.submit(migrate);
                List<Integer> applied = new ArrayList<>(first.get(60, TimeUnit.SECONDS));
                applied.addAll(second.get(60, TimeUnit.SECONDS));
                assertThat(applied).as("round " + round).containsExactlyInAnyOrderElementsOf(all);
            }
        } finally {
            threads.shutdownNow();
        }
    }

    @AfterEach
    void closeBooks() {
        opened.forEach(JdbcAccountBook::close);
    }

    @Test
    void aRestartingGateway_recoversOnlyItsOwnReservations() {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        a.open("alice");
        a.credit("alice", 1_000, "tx-1");
        Reservation ofA = a.reserve("alice", 100);
        Reservation ofB = b.reserve("alice", 200);
        a.recordProgress(ofA, 10);
        b.recordProgress(ofB, 20);
        a.close();

        JdbcAccountBook restartedA = open(A);
        List<Settlement> recovered = restartedA.recoverOpenReservations().stream().map(RecoveredReservation::settlement).toList();

        assertThat(restartedA.epoch()).isEqualTo(2);
        assertThat(recovered).containsExactly(new Settlement(ofA, 10, 90, 0));
        assertThat(b.settle(ofB, 30)).as("B's request runs on").isEqualTo(new Settlement(ofB, 30, 170, 0));
        assertThat(b.balance("alice")).isEqualTo(new AccountState("alice", 960, 0, 40));
    }

    @Test
    void aGatewaysReservation_isNotAnotherGatewaysToTouch() {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        a.open("alice");
        a.credit("alice", 1_000, "tx-1");
        Reservation ofA = a.reserve("alice", 100);

        assertThatThrownBy(() -> b.settle(ofA, 5)).isInstanceOf(UnknownReservationException.class)
                .hasMessageContaining("taken by gateway gw-a");
        assertThatThrownBy(() -> b.recordProgress(ofA, 5)).isInstanceOf(UnknownReservationException.class);
        assertThat(a.settle(ofA, 5).chargedNanoton()).isEqualTo(5);
    }

    @Test
    void theSweep_endsAnExpiredGatewaysReservationsAtTheirProgress_andLeavesLiveOnesAlone() throws Exception {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        a.open("alice");
        a.credit("alice", 1_000, "tx-1");
        Reservation ofA = a.reserve("alice", 100);
        Reservation ofB = b.reserve("alice", 200);
        Reservation untouchedOfB = b.reserve("alice", 50);
        a.recordProgress(ofA, 10);
        b.recordProgress(ofB, 20);

        clock.advance(Duration.ofSeconds(30));
        a.renewLease();                                    // A: expires at 90 s; B (silent): at 60 s
        assertThat(a.sweep()).as("nobody expired yet").isEmpty();
        clock.advance(Duration.ofSeconds(31));
        List<Settlement> swept = a.sweep().stream().map(RecoveredReservation::settlement).toList();

        assertThat(swept).containsExactly(new Settlement(ofB, 20, 180, 0), Settlement.release(untouchedOfB));
        assertThat(a.balance("alice")).isEqualTo(new AccountState("alice", 980, 100, 20));
        assertThat(a.recordProgress(ofA, 15)).as("A is live: its request goes on").isTrue();
        assertThat(a.settle(ofA, 15).chargedNanoton()).isEqualTo(15);
        assertThat(a.sweep()).as("each reservation ends once").isEmpty();
        assertThat(a.balance("alice")).isEqualTo(new AccountState("alice", 965, 0, 35));
        assertThat(sumOf("SELECT epoch FROM gateway_leases WHERE gateway_id = 'gw-b'")).as("fenced once").isEqualTo(2);

        JdbcAccountBook restartedB = open(B);
        clock.advance(Duration.ofSeconds(30));
        restartedB.renewLease();
        assertThat(restartedB.epoch()).isEqualTo(3);
        assertThat(a.sweep()).as("B is back").isEmpty();
        assertThat(restartedB.reserve("alice", 10).amountNanoton()).isEqualTo(10);
    }

    /**
     * A gateway killed with requests running (audit V, V-8): its next start ends their reservations
     * at their last checkpoints and says which requests they were, with the worker and the tokens
     * that checkpoint billed, and keeps a record of each one charged, which the client's lookup and
     * the operator's audit find as any settled request's. A second restart reports and bills nothing.
     */
    @Test
    void aRestart_reportsAndRecordsTheRequestsItsPreviousHolderLeftOpen_once() throws Exception {
        JdbcAccountBook killed = open(A);
        killed.open("alice");
        killed.credit("alice", 1_000, "tx-1");
        ChannelId channel = ChannelId.random(RANDOM);
        Reservation streaming = killed.reserve("alice", 300, new ReservationLabel("chatcmpl-1", "key-a", "m"));
        Reservation queued = killed.reserve("alice", 200, new ReservationLabel("chatcmpl-2", "key-a", "m"));
        TokenCounts checkpointed = new TokenCounts(12, 2, 5, 1);
        killed.recordProgress(Map.of(streaming, 20L),
                Map.of(streaming, new WorkerShare(channel.hex(), 5, "w-1", new TokenCounts(12, 2, 2, 0))));
        killed.recordProgress(Map.of(streaming, 40L), Map.of(streaming, new WorkerShare(channel.hex(), 10, "w-1", checkpointed)));

        JdbcAccountBook restarted = open(A);
        List<RecoveredReservation> recovered = restarted.recoverOpenReservations();

        assertThat(recovered).containsExactly(
                new RecoveredReservation(new Settlement(streaming, 40, 260, 0),
                        new ReservationLabel("chatcmpl-1", "key-a", "m"), "w-1", checkpointed),
                new RecoveredReservation(Settlement.release(queued), new ReservationLabel("chatcmpl-2", "key-a", "m"),
                        null, null));
        assertThat(restarted.request("alice", "chatcmpl-1")).hasValueSatisfying(billed -> {
            assertThat(billed.model()).isEqualTo("m");
            assertThat(billed.tokens()).isEqualTo(checkpointed);
            assertThat(billed.chargedNanoton()).isEqualTo(40);
        });
        assertThat(restarted.request("alice", "chatcmpl-2")).as("released: nothing billed, no record").isEmpty();
        assertThat(restarted.requests("alice")).containsExactly(
                new RequestRecord("chatcmpl-1", "w-1", channel.hex(), "m", checkpointed, 40, 10));
        assertThat(feesBilledOn(channel)).as("the worker is owed its last checkpoint's fee, once").isEqualTo(10);

        JdbcAccountBook again = open(A);
        assertThat(again.recoverOpenReservations()).as("a second restart finds nothing open").isEmpty();
        assertThat(again.balance("alice")).isEqualTo(new AccountState("alice", 960, 0, 40));
        assertThat(again.requests("alice")).hasSize(1);
    }

    /**
     * A gateway whose lease expired is swept by a peer, which reports and records its requests as a
     * restart would; a second peer sweeping after it finds them ended, and reports none again.
     */
    @Test
    void aSweep_reportsAndRecordsTheRequestsOfAnExpiredGateway_once() {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        JdbcAccountBook c = open(new GatewayId("gw-c"));
        a.open("alice");
        a.credit("alice", 1_000, "tx-1");
        Reservation ofB = b.reserve("alice", 300, new ReservationLabel("cmpl-9", "key-b", "m"));
        TokenCounts checkpointed = new TokenCounts(3, 0, 4, 0);
        b.recordProgress(Map.of(ofB, 25L), Map.of(ofB, new WorkerShare(ChannelId.random(RANDOM).hex(), 5, "w-1", checkpointed)));
        clock.advance(EXPIRY.plusSeconds(1));
        a.renewLease();
        c.renewLease();

        assertThat(a.sweep()).containsExactly(new RecoveredReservation(new Settlement(ofB, 25, 275, 0),
                new ReservationLabel("cmpl-9", "key-b", "m"), "w-1", checkpointed));
        assertThat(c.sweep()).isEmpty();
        assertThat(c.request("alice", "cmpl-9")).hasValueSatisfying(billed -> assertThat(billed.chargedNanoton()).isEqualTo(25));
        assertThat(c.balance("alice")).isEqualTo(new AccountState("alice", 975, 0, 25));
    }

    /**
     * A ledger of a build before V14 with a reservation left open, upgraded in place: the restart
     * recovers it as before, at its checkpoint, reporting what is known (no request, worker or
     * tokens) and keeping no record; the reservations taken after the upgrade carry their request.
     */
    @Test
    void aV13LedgerWithAReservationLeftOpen_isRecoveredWithWhatIsKnown() throws Exception {
        url = database().newDatabaseUrl();
        try (Connection c = DriverManager.getConnection(url)) {
            Migrations.apply(c, clock, 13);
            c.setAutoCommit(true);
            try (Statement st = c.createStatement()) {
                st.execute("INSERT INTO accounts VALUES ('alice', 'cocoon-aaaaaaaaaaaaaaaa', 0, 1000, 300, 0)");
                st.execute("INSERT INTO reservations (account_id, amount_nanoton, progress_nanoton, state, reserved_at_micros, "
                        + "gateway_id, lease_epoch, channel_id, worker_fee_nanoton) VALUES ('alice', 300, 40, 'open', 0, "
                        + "'gw-a', 7, '00000000000000000000000000000001', 20)");
                st.execute("INSERT INTO gateway_leases (gateway_id, epoch, expires_at_micros, renewed_at_micros) "
                        + "VALUES ('gw-a', 7, 0, 0)");
            }
        }

        JdbcAccountBook upgraded = open(A);

        assertThat(upgraded.recoverOpenReservations()).singleElement().satisfies(r -> {
            assertThat(r.settlement().chargedNanoton()).isEqualTo(40);
            assertThat(r.label()).isNull();
            assertThat(r.workerId()).isNull();
            assertThat(r.tokens()).isNull();
        });
        assertThat(upgraded.requests("alice")).as("nothing to record it by").isEmpty();
        assertThat(upgraded.balance("alice")).isEqualTo(new AccountState("alice", 960, 0, 40));
        Reservation after = upgraded.reserve("alice", 100, new ReservationLabel("chatcmpl-3", "key-a", "m"));
        assertThat(open(A).recoverOpenReservations()).containsExactly(new RecoveredReservation(Settlement.release(after),
                new ReservationLabel("chatcmpl-3", "key-a", "m"), null, null));
    }

    /**
     * The late writer: B paused past its lease (a GC pause, a partition) and A swept it. Whatever
     * B still sends is refused without effect: its checkpoint (whole batch), its settlement, its
     * journal writes, new reservations and the lease renewal that would tell it to stop. So what
     * it metered after its last recorded progress is billed to nobody and paid to nobody.
     */
    @Test
    void aFencedGateway_isRefusedEverythingAndBillsNothingTwice() throws Exception {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        a.open("alice");
        a.credit("alice", 1_000, "tx-1");
        ChannelJournal journalOfB = b.channelJournal();
        PaymentKeyPair keyOfB = journalOfB.payerKey(() -> PaymentKeyPair.generate(RANDOM));
        ChannelId channel = journalOfB.open(PaymentKeyPair.generate(RANDOM).publicKey(), () -> ChannelId.random(RANDOM))
                .channelId();
        Reservation swept = b.reserve("alice", 200);
        Reservation unmetered = b.reserve("alice", 100);
        b.recordProgress(swept, 20);
        clock.advance(Duration.ofSeconds(61));
        a.renewLease();
        assertThat(a.sweep()).extracting(RecoveredReservation::settlement)
                .containsExactly(new Settlement(swept, 20, 180, 0), Settlement.release(unmetered));

        // B's next payment round: its checkpoint fails, so B signs nothing for those 60 tokens' worth.
        assertThatThrownBy(() -> b.recordProgress(Map.of(swept, 80L, unmetered, 30L),
                Map.of(swept, new WorkerShare(channel.hex(), 40, null, null),
                        unmetered, new WorkerShare(channel.hex(), 15, null, null))))
                .isInstanceOf(ReservationRecoveredException.class);
        assertThatThrownBy(() -> b.recordProgress(swept, 80)).isInstanceOf(ReservationRecoveredException.class);
        assertThatThrownBy(() -> b.settle(swept, 80))
                .isInstanceOfSatisfying(ReservationRecoveredException.class, e -> {
                    assertThat(e.recovered()).isEqualTo(new Settlement(swept, 20, 180, 0));
                    assertThat(e.code()).isEqualTo("reservation_recovered");
                });
        assertThatThrownBy(() -> b.release(swept)).isInstanceOf(ReservationRecoveredException.class);
        assertThatThrownBy(() -> b.reserve("alice", 10)).isInstanceOf(LeaseLostException.class);
        assertThatThrownBy(() -> journalOfB.signed(keyOfB.sign(new SemiChannelState(channel, new SemiChannelBody(1, 40)))))
                .isInstanceOf(LeaseLostException.class);
        assertThatThrownBy(b::renewLease).isInstanceOf(LeaseLostException.class)
                .hasMessageContaining("gw-b (epoch 1)");

        assertThat(a.balance("alice")).as("charged the last recorded progress, once").isEqualTo(
                new AccountState("alice", 980, 0, 20));
        assertThat(feesBilledOn(channel)).as("the refused batch wrote no worker fee").isZero();
    }

    @Test
    void aSecondProcessWithTheSameId_fencesTheFirst_andRecoversItsReservations() {
        JdbcAccountBook first = open(A);
        first.open("alice");
        first.credit("alice", 1_000, "tx-1");
        Reservation r = first.reserve("alice", 100);
        first.recordProgress(r, 10);

        JdbcAccountBook second = open(A);
        assertThat(second.recoverOpenReservations()).extracting(RecoveredReservation::settlement)
                .containsExactly(new Settlement(r, 10, 90, 0));

        assertThatThrownBy(first::renewLease).isInstanceOf(LeaseLostException.class);
        assertThatThrownBy(() -> first.reserve("alice", 10)).isInstanceOf(LeaseLostException.class);
        assertThatThrownBy(() -> first.settle(r, 50)).isInstanceOf(ReservationRecoveredException.class);
        second.renewLease();
        assertThat(second.balance("alice")).isEqualTo(new AccountState("alice", 990, 0, 10));
    }

    @Test
    void aLeaseKeeper_renewsWhileLive_andReportsTheLossOnce() throws Exception {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        List<LeaseLostException> lost = new ArrayList<>();
        try (LeaseKeeper keeper = LeaseKeeper.start(b, Duration.ofHours(1), lost::add)) {
            clock.advance(Duration.ofSeconds(50));
            keeper.beat();                                   // B renewed: expires at 110 s
            clock.advance(Duration.ofSeconds(50));
            assertThat(a.sweep()).as("B renewed in time").isEmpty();

            clock.advance(Duration.ofSeconds(61));
            a.renewLease();
            a.sweep();                                       // B silent past its expiry: fenced
            keeper.beat();
            keeper.beat();
        }
        assertThat(lost).singleElement().satisfies(e -> {
            assertThat(e.gateway()).isEqualTo(B);
            assertThat(e.epoch()).isEqualTo(1);
        });
    }

    /**
     * Audit Q, Q-4: a fenced gateway kept serving until its next beat, up to 5 s, every request
     * refused by the ledger and logged. The first call that finds the lease lost (here a
     * reservation) reports it at once, once; later reservations are refused without the database.
     */
    @Test
    void theFirstCallToFindTheLeaseLost_reportsItToTheKeeperAtOnce() throws Exception {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        b.open("alice");
        b.credit("alice", 1_000, "deposit");
        List<LeaseLostException> lost = new ArrayList<>();
        try (LeaseKeeper keeper = LeaseKeeper.start(b, Duration.ofHours(1), lost::add)) {
            clock.advance(Duration.ofSeconds(61));
            a.renewLease();
            a.sweep();                                       // B silent past its expiry: fenced
            assertThat(lost).as("nothing has called into B's book yet").isEmpty();

            assertThatThrownBy(() -> b.reserve("alice", 10)).isInstanceOf(LeaseLostException.class);
            assertThat(lost).as("told by the reservation, not a beat").singleElement()
                    .satisfies(e -> assertThat(e.getMessage()).contains("refused to reserve"));
            assertThatThrownBy(() -> b.reserve("alice", 10)).isInstanceOf(LeaseLostException.class);
            keeper.beat();
        }
        assertThat(lost).as("once").hasSize(1);
    }

    /**
     * Two gateways, four threads each, reserving, checkpointing and settling on one account with
     * little money (refusals are constant), while both credit the same deposits: at the end every
     * settlement is in the totals exactly, each deposit once.
     */
    @Test
    void twoGatewaysAtOnce_keepBalancePlusReservedPlusSpentEqualToDeposits() throws Exception {
        JdbcAccountBook a = open(A);
        JdbcAccountBook b = open(B);
        a.open("alice");
        a.credit("alice", 5_000, "initial");
        int threadsPerGateway = 4;
        int rounds = 60;
        AtomicLong charged = new AtomicLong();
        AtomicLong newCredits = new AtomicLong();
        ExecutorService threads = Executors.newFixedThreadPool(2 * threadsPerGateway);
        try {
            List<Future<?>> running = new ArrayList<>();
            for (int t = 0; t < 2 * threadsPerGateway; t++) {
                JdbcAccountBook book = t % 2 == 0 ? a : b;
                SplittableRandom random = new SplittableRandom(t);
                running.add(threads.submit(() -> {
                    for (int round = 0; round < rounds; round++) {
                        if (round % 10 == 0 && book.credit("alice", 700, "deposit-" + round)) {
                            newCredits.addAndGet(700);   // both gateways see every deposit; one credits it
                        }
                        Reservation r;
                        try {
                            r = book.reserve("alice", random.nextLong(1, 400));
                        } catch (InsufficientBalanceException e) {
                            continue;
                        }
                        long progress = random.nextLong(0, r.amountNanoton() + 1);
                        book.recordProgress(Map.of(r, progress));
                        Settlement s = random.nextInt(5) == 0 ? book.release(r)
                                : book.settle(r, random.nextLong(progress, r.amountNanoton() + 50));
                        charged.addAndGet(s.chargedNanoton());
                    }
                    return null;
                }));
            }
            for (Future<?> f : running) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            threads.shutdownNow();
        }

        assertThat(newCredits.get()).as("deposit-0 .. deposit-50, each once").isEqualTo(6 * 700);
        AccountState totals = a.balance("alice");
        assertThat(totals.reservedNanoton()).isZero();
        assertThat(totals.spentNanoton()).isEqualTo(charged.get());
        assertThat(totals.balanceNanoton() + totals.reservedNanoton() + totals.spentNanoton())
                .isEqualTo(5_000 + newCredits.get());
        assertThat(sumOf("SELECT SUM(amount_nanoton) FROM credits")).isEqualTo(5_000 + newCredits.get());
        assertThat(sumOf("SELECT SUM(charged_nanoton) FROM reservations")).isEqualTo(charged.get());
        assertThat(sumOf("SELECT COUNT(DISTINCT gateway_id) FROM reservations")).isEqualTo(2);
    }

    @Test
    void eachGateway_hasItsOwnPayerKeyAndChannels() {
        ChannelJournal a = open(A).channelJournal();
        ChannelJournal b = open(B).channelJournal();
        PaymentKeyPair keyOfA = a.payerKey(() -> PaymentKeyPair.generate(RANDOM));
        PaymentKeyPair keyOfB = b.payerKey(() -> PaymentKeyPair.generate(RANDOM));
        PaymentPublicKey worker = PaymentKeyPair.generate(RANDOM).publicKey();

        ChannelId withA = a.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        ChannelId withB = b.open(worker, () -> ChannelId.random(RANDOM)).channelId();
        a.signed(keyOfA.sign(new SemiChannelState(withA, new SemiChannelBody(1, 100))));

        assertThat(keyOfB.publicKey()).isNotEqualTo(keyOfA.publicKey());
        assertThat(withB).isNotEqualTo(withA);
        assertThat(b.open(worker, () -> null).last()).as("A's state is not B's").isEqualTo(SemiChannelBody.INITIAL);
        assertThatThrownBy(() -> b.signed(keyOfB.sign(new SemiChannelState(withA, new SemiChannelBody(2, 200)))))
                .as("B cannot sign on A's channel").isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("no channel");
        b.closed(worker, withB);
        assertThat(a.open(worker, () -> null).channelId()).as("B's close leaves A's channel").isEqualTo(withA);
    }

    /**
     * A single gateway's ledger from before V6 upgrades in place: its payer key, channel and open
     * reservation become the default gateway's, and its first start recovers that reservation.
     */
    @Test
    void aV5Ledger_becomesTheDefaultGateways() throws Exception {
        url = database().newDatabaseUrl();
        PaymentKeyPair key = PaymentKeyPair.generate(RANDOM);
        PaymentPublicKey worker = PaymentKeyPair.generate(RANDOM).publicKey();
        ChannelId channel = ChannelId.random(RANDOM);
        try (Connection c = DriverManager.getConnection(url)) {
            Migrations.apply(c, clock, 5);
            c.setAutoCommit(true);
            try (Statement st = c.createStatement()) {
                st.execute("INSERT INTO accounts VALUES ('alice', 'cocoon-aaaaaaaaaaaaaaaa', 0, 1000, 300, 0)");
                st.execute("INSERT INTO credits VALUES ('tx-1', 'alice', 1000, 0)");
                st.execute("INSERT INTO reservations (account_id, amount_nanoton, progress_nanoton, state, "
                        + "reserved_at_micros, channel_id, worker_fee_nanoton) VALUES ('alice', 300, 40, 'open', 0, '"
                        + channel.hex() + "', 20)");
                st.execute("INSERT INTO payer_key VALUES (1, '" + HexFormat.of().formatHex(key.seed()) + "', 0)");
                st.execute("INSERT INTO channels (payee_key, channel_id, payer_key, last_seqno, last_sent_nanoton, "
                        + "opened_at_micros, updated_at_micros) VALUES ('" + worker.hex() + "', '" + channel.hex() + "', '"
                        + key.publicKey().hex() + "', 3, 15, 0, 0)");
            }
        }

        JdbcAccountBook book = open(GatewayId.DEFAULT);
        ChannelJournal journal = book.channelJournal();

        assertThat(journal.payerKey(() -> {
            throw new AssertionError("the stored key is kept");
        }).publicKey()).isEqualTo(key.publicKey());
        ChannelJournal.Entry entry = journal.open(worker, () -> {
            throw new AssertionError("the stored channel is kept");
        });
        assertThat(entry.channelId()).isEqualTo(channel);
        assertThat(entry.last()).isEqualTo(new SemiChannelBody(3, 15));
        assertThat(entry.feesBilledNanoton()).isEqualTo(20);
        List<Settlement> recovered = book.recoverOpenReservations().stream().map(RecoveredReservation::settlement).toList();
        assertThat(recovered).singleElement().satisfies(s -> {
            assertThat(s.reservation().amountNanoton()).isEqualTo(300);
            assertThat(s.chargedNanoton()).isEqualTo(40);
        });
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 960, 0, 40));
        assertThat(book.reserve("alice", 1).id()).as("ids go on above the migrated ones")
                .isGreaterThan(recovered.get(0).reservation().id());
    }

    private long feesBilledOn(ChannelId channel) throws Exception {
        try (Connection c = DriverManager.getConnection(url)) {
            return Settlements.workerFeesBilled(c, channel.hex());
        }
    }

    private long sumOf(String query) throws Exception {
        try (Connection c = DriverManager.getConnection(url);
             PreparedStatement ps = c.prepareStatement(query);
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
