package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.cocoonjvm.billing.accounts.AccountState;
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
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.Test;

/**
 * What becomes of the reservations a gateway left open on the shared ledger: a restarting gateway
 * recovers only its own, another gateway's are not its to touch, a live gateway sweeps an expired
 * one's at their last checkpoints, a restart and a sweep report and record the requests they ended
 * once, a V13 ledger's open reservation is recovered with what is known, and a fenced gateway (a
 * late writer, or the first of two processes with one id) is refused everything and bills nothing
 * twice. Apart from {@link ClusterLeaseContract} because these books open taking the lease over
 * whoever holds it (as restarts and fencing want): the gateways here meet through their
 * reservations, not through the checks a start makes, and nothing depends on the database.
 */
abstract class ClusterRecoveryContract extends ClusterLedgerFixture {
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
}
