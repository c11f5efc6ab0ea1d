package org.cocoonjvm.billing.accounts;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.UnaryOperator;

/**
 * An {@link AccountBook} held in memory, for the gateway's request path. Nothing survives a
 * restart; the durable ledger is a later implementation of the same interface.
 *
 * <p>Lock-free: each account's {@link AccountState} is an immutable snapshot swapped by
 * compare-and-set, so a check ("is enough available?") and the update it allows happen on the same
 * snapshot and concurrent reservations can never take more than the balance. Each reservation has
 * its own outcome slot, also set by compare-and-set: the first settle or release to fill it is the
 * only one applied to the account.
 *
 * <p>Memory stays bounded: an ended reservation's outcome is kept for {@code endedRetention} (so a
 * late duplicate still gets the first result) and then forgotten; a settle after that fails with
 * {@link UnknownReservationException} and charges nothing. Credit references are kept for the
 * life of the book, as deposits are few.
 */
public final class InMemoryAccountBook implements AccountBook {
    public static final Duration DEFAULT_ENDED_RETENTION = Duration.ofMinutes(10);

    /** One account: its opening record and the current snapshot of its money. */
    private record Ledger(Account account, AtomicReference<AccountState> state) {
    }

    /** A reservation the book issued; {@code outcome} is filled once, when it ends. */
    private record Hold(Reservation reservation, AtomicReference<Settlement> outcome) {
    }

    private record Ended(long reservationId, Instant at) {
    }

    private record Credit(String accountId, long amountNanoton) {
    }

    private final Clock clock;
    private final Duration endedRetention;
    private final ConcurrentHashMap<String, Ledger> accounts = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, Credit> credits = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Long, Hold> holds = new ConcurrentHashMap<>();
    private final Queue<Ended> ended = new ConcurrentLinkedQueue<>();   // in the order they ended
    private final AtomicLong lastReservationId = new AtomicLong();

    public InMemoryAccountBook(Clock clock) {
        this(clock, DEFAULT_ENDED_RETENTION);
    }

    public InMemoryAccountBook(Clock clock, Duration endedRetention) {
        this.clock = Objects.requireNonNull(clock, "clock");
        if (endedRetention.isNegative()) {
            throw new IllegalArgumentException("endedRetention must be >= 0, got " + endedRetention);
        }
        this.endedRetention = endedRetention;
    }

    @Override
    public Account open(String accountId) {
        AccountState.checkId(accountId);
        return accounts.computeIfAbsent(accountId, id -> new Ledger(new Account(id, clock.instant()),
                new AtomicReference<>(AccountState.empty(id)))).account();
    }

    @Override
    public AccountState balance(String accountId) {
        return ledger(accountId).state().get();
    }

    @Override
    public boolean credit(String accountId, long amountNanoton, String reference) {
        Ledger ledger = ledger(accountId);
        if (amountNanoton <= 0) {
            throw new IllegalArgumentException("a credit must be > 0 nanoTON, got " + amountNanoton);
        }
        if (reference == null || reference.isBlank()) {
            throw new IllegalArgumentException("a credit needs a reference");
        }
        Credit credit = new Credit(accountId, amountNanoton);
        Credit first = credits.putIfAbsent(reference, credit);
        if (first != null) {
            if (!first.equals(credit)) {
                throw new CreditConflictException(reference, first.accountId(), first.amountNanoton(),
                        accountId, amountNanoton);
            }
            return false;
        }
        try {
            update(ledger, s -> new AccountState(s.accountId(),
                    Math.addExact(s.balanceNanoton(), amountNanoton), s.reservedNanoton(), s.spentNanoton()));
        } catch (ArithmeticException overflow) {
            credits.remove(reference, credit);   // not credited, so a corrected retry may use it
            throw overflow;
        }
        return true;
    }

    @Override
    public Reservation reserve(String accountId, long amountNanoton) {
        Ledger ledger = ledger(accountId);
        if (amountNanoton < 0) {
            throw new IllegalArgumentException("a reservation must be >= 0 nanoTON, got " + amountNanoton);
        }
        // The check runs on the snapshot being replaced: if another thread got there first, the CAS
        // fails and the check runs again on the new snapshot.
        update(ledger, s -> {
            if (s.availableNanoton() < amountNanoton) {
                throw new InsufficientBalanceException(accountId, amountNanoton, s.availableNanoton());
            }
            return new AccountState(s.accountId(), s.balanceNanoton(),
                    s.reservedNanoton() + amountNanoton, s.spentNanoton());
        });
        Reservation reservation = new Reservation(accountId, lastReservationId.incrementAndGet(), amountNanoton);
        holds.put(reservation.id(), new Hold(reservation, new AtomicReference<>()));
        return reservation;
    }

    @Override
    public Settlement settle(Reservation reservation, long actualCostNanoton) {
        return end(reservation, Settlement.charge(reservation, actualCostNanoton));
    }

    @Override
    public Settlement release(Reservation reservation) {
        return end(reservation, Settlement.release(reservation));
    }

    /** Applies {@code outcome} if it is the first for this reservation; otherwise returns the first. */
    private Settlement end(Reservation reservation, Settlement outcome) {
        Hold hold = holds.get(reservation.id());
        if (hold == null) {
            throw new UnknownReservationException(reservation,
                    "never issued by this book, or ended more than " + endedRetention + " ago");
        }
        if (!hold.reservation().equals(reservation)) {
            throw new UnknownReservationException(reservation, "this book issued " + hold.reservation());
        }
        Settlement first = hold.outcome().compareAndExchange(null, outcome);
        if (first != null) {
            return first;
        }
        // Only the thread that filled the slot gets here, once per reservation.
        update(ledger(reservation.accountId()), s -> new AccountState(s.accountId(),
                Math.subtractExact(s.balanceNanoton(), outcome.chargedNanoton()),
                s.reservedNanoton() - reservation.amountNanoton(),
                Math.addExact(s.spentNanoton(), outcome.chargedNanoton())));
        ended.add(new Ended(reservation.id(), clock.instant()));
        forgetExpired();
        return outcome;
    }

    /** Drops the outcomes of reservations that ended more than the retention ago. */
    private void forgetExpired() {
        Instant cutoff = clock.instant().minus(endedRetention);
        for (Ended oldest; (oldest = ended.peek()) != null && oldest.at().isBefore(cutoff); ) {
            if (ended.remove(oldest)) {   // only one thread wins each entry
                holds.remove(oldest.reservationId());
            }
        }
    }

    private Ledger ledger(String accountId) {
        AccountState.checkId(accountId);
        Ledger ledger = accounts.get(accountId);
        if (ledger == null) {
            throw new UnknownAccountException(accountId);
        }
        return ledger;
    }

    /** Compare-and-set loop; {@code change} must be free of side effects, as it may run again. */
    private static void update(Ledger ledger, UnaryOperator<AccountState> change) {
        ledger.state().updateAndGet(change);
    }
}
