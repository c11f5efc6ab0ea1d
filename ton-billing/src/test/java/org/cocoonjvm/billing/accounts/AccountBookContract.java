package org.cocoonjvm.billing.accounts;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The guarantees of {@link AccountBook}, run against every implementation: each subclass says how
 * to make a fresh, empty book. Tests of one implementation's own behaviour live in its subclass.
 */
public abstract class AccountBookContract {
    protected static final Instant START = Instant.parse("2025-05-01T12:00:00Z");

    protected MutableClock clock;
    protected AccountBook book;

    /** A new book with no accounts, independent of every other book this returned. */
    protected abstract AccountBook newBook(Clock clock);

    @BeforeEach
    void setUp() {
        clock = new MutableClock(START);
        book = newBook(clock);
        book.open("alice");
    }

    @Test
    void open_twice_returnsTheFirstAccountUnchanged() {
        book.credit("alice", 100, "tx-1");
        clock.advance(Duration.ofHours(1));

        Account again = book.open("alice");

        assertThat(again.openedAt()).isEqualTo(START);
        assertThat(again).isEqualTo(book.account("alice"));
        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(100);
    }

    @Test
    void newAccount_isEmpty() {
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 0, 0, 0));
    }

    @Test
    void unknownAccount_shouldThrow() {
        assertThatThrownBy(() -> book.balance("bob")).isInstanceOf(UnknownAccountException.class)
                .extracting(e -> ((AccountException) e).code()).isEqualTo("unknown_account");
        assertThatThrownBy(() -> book.credit("bob", 1, "tx")).isInstanceOf(UnknownAccountException.class);
        assertThatThrownBy(() -> book.reserve("bob", 1)).isInstanceOf(UnknownAccountException.class);
        assertThatThrownBy(() -> book.open(" ")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void credit_sameReferenceTwice_creditsOnce() {
        assertThat(book.credit("alice", 1_000, "tx-1")).isTrue();
        assertThat(book.credit("alice", 1_000, "tx-1")).isFalse();
        assertThat(book.credit("alice", 500, "tx-2")).isTrue();

        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(1_500);
    }

    /** Audit N-5: a start grant whose amount changed was credited again. */
    @Test
    void creditOnce_isOncePerReferenceWhateverTheAmount() {
        assertThat(book.creditOnce("alice", 1_000, "grant-at-start:alice")).isTrue();
        assertThat(book.creditOnce("alice", 1_000, "grant-at-start:alice")).isFalse();
        assertThat(book.creditOnce("alice", 5_000, "grant-at-start:alice")).as("another amount").isFalse();

        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(1_000);
    }

    /** A grant credited as grant-at-start:ACCOUNT:AMOUNT (before audit N-5) counts: no second grant under the new form. */
    @Test
    void creditOnce_countsTheOlderFormOfItsReference() {
        book.open("bob");
        book.open("carol_x");
        book.open("carolax");
        book.credit("alice", 100_000, "grant-at-start:alice:100000");
        book.credit("carolax", 7, "grant-at-start:carolax:7");

        assertThat(book.creditOnce("alice", 5_000, "grant-at-start:alice")).isFalse();
        assertThat(book.creditOnce("bob", 5_000, "grant-at-start:bob")).as("bob had none").isTrue();
        assertThat(book.creditOnce("carol_x", 5_000, "grant-at-start:carol_x"))
                .as("'_' is a character, not a wildcard: carolax's grant is not carol_x's").isTrue();

        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(100_000);
        assertThat(book.balance("bob").balanceNanoton()).isEqualTo(5_000);
        assertThat(book.balance("carol_x").balanceNanoton()).isEqualTo(5_000);
        assertThatThrownBy(() -> book.creditOnce("bob", 5_000, "grant-at-start:carol_x"))
                .as("another account's reference").isInstanceOf(CreditConflictException.class);
        assertThatThrownBy(() -> book.creditOnce("dave", 5_000, "grant-at-start:dave")).isInstanceOf(UnknownAccountException.class);
    }

    @Test
    void credit_referenceReusedWithAnotherAmountOrAccount_shouldThrowAndCreditNothing() {
        book.open("bob");
        book.credit("alice", 1_000, "tx-1");

        assertThatThrownBy(() -> book.credit("alice", 2_000, "tx-1"))
                .isInstanceOf(CreditConflictException.class).hasMessageContaining("tx-1");
        assertThatThrownBy(() -> book.credit("bob", 1_000, "tx-1"))
                .isInstanceOf(CreditConflictException.class);
        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(1_000);
        assertThat(book.balance("bob").balanceNanoton()).isZero();
    }

    @Test
    void credit_badArguments_shouldThrow() {
        assertThatThrownBy(() -> book.credit("alice", 0, "tx")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> book.credit("alice", -5, "tx")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> book.credit("alice", 5, "")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void credit_overflowingTheBalance_shouldThrowAndLeaveTheReferenceUnused() {
        book.credit("alice", Long.MAX_VALUE, "tx-1");

        assertThatThrownBy(() -> book.credit("alice", 1, "tx-2")).isInstanceOf(ArithmeticException.class);
        assertThat(book.balance("alice").balanceNanoton()).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void reserve_holdsWithoutSpending() {
        book.credit("alice", 1_000, "tx-1");

        Reservation reservation = book.reserve("alice", 300);

        assertThat(reservation.amountNanoton()).isEqualTo(300);
        AccountState state = book.balance("alice");
        assertThat(state).isEqualTo(new AccountState("alice", 1_000, 300, 0));
        assertThat(state.availableNanoton()).isEqualTo(700);
    }

    @Test
    void settle_chargesTheActualCostAndReleasesTheRest() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);

        Settlement settlement = book.settle(reservation, 120);

        assertThat(settlement).isEqualTo(new Settlement(reservation, 120, 180, 0));
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 880, 0, 120));
    }

    @Test
    void release_givesEverythingBack() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);

        Settlement settlement = book.release(reservation);

        assertThat(settlement).isEqualTo(new Settlement(reservation, 0, 300, 0));
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 1_000, 0, 0));
    }

    @Test
    void reserve_moreThanAvailable_shouldThrowWithTheAmounts() {
        book.credit("alice", 100, "tx-1");
        book.reserve("alice", 60);

        assertThatThrownBy(() -> book.reserve("alice", 50))
                .isInstanceOfSatisfying(InsufficientBalanceException.class, e -> {
                    assertThat(e.accountId()).isEqualTo("alice");
                    assertThat(e.requestedNanoton()).isEqualTo(50);
                    assertThat(e.availableNanoton()).isEqualTo(40);
                    assertThat(e.code()).isEqualTo("insufficient_balance");
                })
                .hasMessage("account alice has 40 nanoTON available, 50 requested");
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 100, 60, 0));
    }

    @Test
    void reserve_exactlyWhatIsAvailable_succeeds() {
        book.credit("alice", 100, "tx-1");

        book.reserve("alice", 100);

        assertThat(book.balance("alice").availableNanoton()).isZero();
        assertThat(book.reserve("alice", 0).amountNanoton()).isZero();   // a free request needs no funds
        assertThatThrownBy(() -> book.reserve("alice", 1)).isInstanceOf(InsufficientBalanceException.class);
        assertThatThrownBy(() -> book.reserve("alice", -1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void settle_twice_isANoOpReturningTheFirstResult() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        Settlement first = book.settle(reservation, 120);

        assertThat(book.settle(reservation, 250)).isEqualTo(first);
        assertThat(book.release(reservation)).isEqualTo(first);
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 880, 0, 120));
    }

    @Test
    void settle_afterRelease_isANoOpReturningTheRelease() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        Settlement released = book.release(reservation);

        assertThat(book.settle(reservation, 120)).isEqualTo(released);
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 1_000, 0, 0));
    }

    @Test
    void settle_aboveTheReservation_chargesInFullAndRecordsTheOverrun() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 100);

        Settlement settlement = book.settle(reservation, 150);

        assertThat(settlement).isEqualTo(new Settlement(reservation, 150, 0, 50));
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 850, 0, 150));
    }

    @Test
    void settle_overrunBeyondTheFunds_leavesADebtThatBlocksNewReservations() {
        book.credit("alice", 100, "tx-1");
        Reservation reservation = book.reserve("alice", 100);

        book.settle(reservation, 300);

        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", -200, 0, 300));
        assertThatThrownBy(() -> book.reserve("alice", 0))
                .isInstanceOfSatisfying(InsufficientBalanceException.class,
                        e -> assertThat(e.availableNanoton()).isEqualTo(-200));
        book.credit("alice", 250, "tx-2");
        assertThat(book.reserve("alice", 50).amountNanoton()).isEqualTo(50);
    }

    @Test
    void settle_negativeCost_shouldThrowAndLeaveTheReservationOpen() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 100);

        assertThatThrownBy(() -> book.settle(reservation, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThat(book.settle(reservation, 10).chargedNanoton()).isEqualTo(10);
    }

    @Test
    void settle_reservationThisBookDidNotIssue_shouldThrowAndChargeNothing() {
        book.credit("alice", 1_000, "tx-1");
        Reservation real = book.reserve("alice", 100);
        AccountBook other = newBook(clock);
        other.open("alice");

        assertThatThrownBy(() -> book.settle(new Reservation("alice", 999, 100), 10))
                .isInstanceOf(UnknownReservationException.class)
                .extracting(e -> ((AccountException) e).code()).isEqualTo("unknown_reservation");
        assertThatThrownBy(() -> book.release(new Reservation("alice", real.id(), 1_000)))
                .isInstanceOf(UnknownReservationException.class).hasMessageContaining("this book issued");
        assertThatThrownBy(() -> other.settle(real, 10)).isInstanceOf(UnknownReservationException.class);
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 1_000, 100, 0));
    }

    @Test
    void depositComment_isUniqueStableAndResolvesToItsAccount() {
        Account alice = book.account("alice");
        Account bob = book.open("bob");

        assertThat(DepositComments.wellFormed(alice.depositComment())).isTrue();
        assertThat(bob.depositComment()).isNotEqualTo(alice.depositComment());
        assertThat(book.open("alice").depositComment()).isEqualTo(alice.depositComment());
        assertThat(book.accountByDepositComment(alice.depositComment())).contains(alice);
        assertThat(book.accountByDepositComment(bob.depositComment())).contains(bob);
        assertThat(book.accountByDepositComment("cocoon-aaaaaaaaaaaaaaaa")).isEmpty();
        assertThat(book.accountByDepositComment("not a comment")).isEmpty();
        assertThat(book.accountByDepositComment(null)).isEmpty();
        assertThatThrownBy(() -> book.account("carol")).isInstanceOf(UnknownAccountException.class);
    }

    @Test
    void settle_belowRecordedProgress_chargesTheProgress() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);

        assertThat(book.recordProgress(reservation, 50)).isTrue();
        assertThat(book.recordProgress(reservation, 80)).isTrue();
        assertThat(book.recordProgress(reservation, 60)).as("progress only rises").isTrue();
        Settlement settlement = book.settle(reservation, 70);

        assertThat(settlement).isEqualTo(new Settlement(reservation, 80, 220, 0));
        assertThat(book.recordProgress(reservation, 90)).as("ended").isFalse();
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 920, 0, 80));
    }

    @Test
    void release_afterProgress_chargesTheProgress() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        book.recordProgress(reservation, 40);

        assertThat(book.release(reservation)).isEqualTo(new Settlement(reservation, 40, 260, 0));
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 960, 0, 40));
    }

    @Test
    void recordProgress_batch_recordsEachOpenOneAndSkipsEndedOnes() {
        book.credit("alice", 1_000, "tx-1");
        Reservation first = book.reserve("alice", 100);
        Reservation second = book.reserve("alice", 200);
        Reservation ended = book.reserve("alice", 300);
        book.recordProgress(second, 90);
        Settlement endedFirst = book.settle(ended, 30);

        book.recordProgress(Map.of(first, 40L, second, 70L, ended, 250L));

        assertThat(book.release(first)).isEqualTo(new Settlement(first, 40, 60, 0));
        assertThat(book.release(second)).as("progress only rises").isEqualTo(new Settlement(second, 90, 110, 0));
        assertThat(book.release(ended)).isEqualTo(endedFirst);
        assertThatThrownBy(() -> book.recordProgress(Map.of(first, -1L))).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void recordProgress_badArguments_shouldThrow() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);

        assertThatThrownBy(() -> book.recordProgress(reservation, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> book.recordProgress(new Reservation("alice", reservation.id(), 301), 5))
                .isInstanceOf(UnknownReservationException.class);
        assertThatThrownBy(() -> book.recordProgress(new Reservation("alice", reservation.id() + 1000, 1), 5))
                .isInstanceOf(UnknownReservationException.class);
    }

    @Test
    void recoverOpenReservations_settlesAtProgressReleasesTheRestAndLeavesEndedOnesAlone() {
        book.credit("alice", 1_000, "tx-1");
        Reservation untouched = book.reserve("alice", 100);
        Reservation progressed = book.reserve("alice", 200);
        Reservation settled = book.reserve("alice", 300);
        book.recordProgress(progressed, 150);
        Settlement first = book.settle(settled, 10);

        List<Settlement> recovered = book.recoverOpenReservations().stream().map(RecoveredReservation::settlement).toList();

        assertThat(recovered).containsExactly(new Settlement(untouched, 0, 100, 0),
                new Settlement(progressed, 150, 50, 0));
        assertThat(book.settle(settled, 99)).isEqualTo(first);
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 840, 0, 160));
        assertThat(book.recoverOpenReservations()).isEmpty();
    }

    /** The late writer: a request still running when recovery ended its reservation gets nothing more in. */
    @Test
    void aReservationEndedByRecovery_refusesItsOwnersLateCalls() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 100);
        book.recordProgress(reservation, 30);
        book.recoverOpenReservations();

        assertThatThrownBy(() -> book.recordProgress(reservation, 60)).isInstanceOf(ReservationRecoveredException.class);
        assertThatThrownBy(() -> book.recordProgress(Map.of(reservation, 60L)))
                .isInstanceOf(ReservationRecoveredException.class);
        assertThatThrownBy(() -> book.settle(reservation, 60)).isInstanceOfSatisfying(ReservationRecoveredException.class,
                e -> assertThat(e.recovered()).isEqualTo(new Settlement(reservation, 30, 70, 0)));
        assertThatThrownBy(() -> book.release(reservation)).isInstanceOf(ReservationRecoveredException.class);
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 970, 0, 30));
    }

    @Test
    void settle_withARequestRecord_chargesItsClientCost() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        RequestRecord request = new RequestRecord("req-1", "worker-1", null, "m",
                new TokenCounts(10, 2, 20, 0), 120, 60);

        assertThat(book.settle(reservation, request)).isEqualTo(new Settlement(reservation, 120, 180, 0));
        assertThat(book.settle(reservation, request)).isEqualTo(new Settlement(reservation, 120, 180, 0));
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 880, 0, 120));
    }
    @Test
    void request_settledWithARecord_isFoundByItsOwnAccountOnly() {
        book.open("bob");
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        TokenCounts tokens = new TokenCounts(10, 2, 20, 5);
        clock.advance(Duration.ofSeconds(7));

        book.settle(reservation, new RequestRecord("chatcmpl-1", "worker-1", null, "m", tokens, 120, 60));

        assertThat(book.request("alice", "chatcmpl-1"))
                .contains(new BilledRequest("chatcmpl-1", "alice", "m", tokens, 120, START.plusSeconds(7)));
        assertThat(book.request("bob", "chatcmpl-1")).as("another account's").isEmpty();
        assertThat(book.request("carol", "chatcmpl-1")).as("an account never opened").isEmpty();
        assertThat(book.request("alice", "chatcmpl-2")).isEmpty();
        assertThatThrownBy(() -> book.request(" ", "chatcmpl-1")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void request_showsWhatTheAccountPaid_andOnlyTheSettlementThatEndedIt() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 300);
        book.recordProgress(reservation, 150);
        RequestRecord request = new RequestRecord("chatcmpl-1", "worker-1", null, "m", new TokenCounts(10, 0, 20, 0), 120, 60);

        book.settle(reservation, request);
        book.settle(reservation, new RequestRecord("chatcmpl-1", "worker-2", null, "m", new TokenCounts(10, 0, 90, 0), 280, 140));

        assertThat(book.request("alice", "chatcmpl-1")).get().satisfies(billed -> {
            assertThat(billed.chargedNanoton()).as("the recorded progress, above the priced usage").isEqualTo(150);
            assertThat(billed.tokens()).isEqualTo(request.tokens());
        });
        assertThat(book.balance("alice").spentNanoton()).isEqualTo(150);
    }

    @Test
    void request_endedWithoutARecord_isNotFound() {
        book.credit("alice", 1_000, "tx-1");
        Reservation released = book.reserve("alice", 100);
        Reservation recovered = book.reserve("alice", 100);
        RequestRecord late = new RequestRecord("chatcmpl-late", "worker-1", null, "m", new TokenCounts(10, 0, 20, 0), 60, 30);
        book.release(released);
        book.recordProgress(recovered, 40);
        book.recoverOpenReservations();

        assertThatThrownBy(() -> book.settle(recovered, late)).isInstanceOf(ReservationRecoveredException.class);
        assertThat(book.request("alice", "chatcmpl-late")).as("recovery billed its progress, without a record").isEmpty();
        assertThat(book.settle(released, new RequestRecord("chatcmpl-released", "worker-1", null, "m",
                new TokenCounts(1, 0, 1, 0), 3, 1))).as("the release stands").isEqualTo(Settlement.release(released));
        assertThat(book.request("alice", "chatcmpl-released")).isEmpty();
    }
}
