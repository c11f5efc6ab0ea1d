package org.cocoonjvm.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.junit.jupiter.api.Test;

/**
 * Gateways live side by side on one ledger: two starts at once on an empty ledger apply each
 * migration once, the lease keeper renews and reports a loss once (the first call to find it
 * reports it at once), two gateways' concurrent traffic keeps the totals exact with each deposit
 * credited once, each gateway keeps its own payer key and channels, and a V5 ledger's key, channel
 * and reservation become the default gateway's. Apart from {@link ClusterRecoveryContract} because
 * these tests are about what gateways keep right or apart while both run, not what is left after one.
 */
abstract class ClusterSharingContract extends ClusterLedgerFixture {
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
}
