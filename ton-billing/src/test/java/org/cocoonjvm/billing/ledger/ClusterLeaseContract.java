package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.Settlement;
import org.junit.jupiter.api.Test;

/**
 * Who may start under a gateway id while its lease is held (audit N-3, reviews R and U, audit Q-8):
 * a start refused while a live holder has the lease, in this process or on another host, until it
 * expires or is taken over; taken at once when the holder's process is gone from this host, its data
 * dir is held, it released the lease or no build recorded it; a stop that releases the lease or keeps
 * it for its kept settlements; a start that waits for a stopping holder; a V9 ledger's fresh lease.
 * Apart from the other cluster contracts because these tests rewrite the lease's holder in the
 * database and start books as `cocoon gateway` does, and their outcome depends on {@link #exclusive()}.
 */
abstract class ClusterLeaseContract extends ClusterLedgerFixture {
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
    void aRestartOnTheHoldersHost_afterItsProcessIsGone_takesTheLeaseAtOnce() throws Exception {
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
        // First until the open has begun its wait (on a loaded machine not always within the 1.5 s
        // alone, and waits was then still 0), then the 1.5 s it must go on waiting.
        long begun = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (waits.get() == 0 && !next.isDone() && System.nanoTime() < begun) {
            Thread.sleep(20);
        }
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
}
