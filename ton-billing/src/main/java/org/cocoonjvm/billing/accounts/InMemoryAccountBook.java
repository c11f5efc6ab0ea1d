package org.cocoonjvm.billing.accounts;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongFunction;
import java.util.function.UnaryOperator;

/**
 * An {@link AccountBook} held in memory, for tests and throwaway demos. Nothing survives a
 * restart; {@link org.cocoonjvm.billing.ledger.JdbcAccountBook} is the durable one.
 *
 * <p>Accounts are lock-free: each account's {@link AccountState} is an immutable snapshot swapped
 * by compare-and-set, so a check ("is enough available?") and the update it allows happen on the
 * same snapshot and concurrent reservations can never take more than the balance. Each reservation
 * has its own outcome slot, filled under that reservation's monitor (never an account-wide lock):
 * the first settle or release to fill it is the only one applied to the account.
 *
 * <p>Memory stays bounded: an ended reservation's outcome is kept for {@code endedRetention} (so a
 * late duplicate still gets the first result) and then forgotten; a settle after that fails with
 * {@link UnknownReservationException} and charges nothing. Credit references are kept for the
 * life of the book, as deposits are few. It keeps no audit trail: of a {@link RequestRecord} given
 * to {@link #settle(Reservation, RequestRecord)} it keeps what {@link #request} shows, for as long
 * as that reservation's outcome, and drops the rest (worker, channel, fee).
 */
public final class InMemoryAccountBook implements AccountBook {
    public static final Duration DEFAULT_ENDED_RETENTION = Duration.ofMinutes(10);

    /** One account: its opening record and the current snapshot of its money. */
    private record Ledger(Account account, AtomicReference<AccountState> state) {
    }

    /**
     * A reservation the book issued; {@code outcome} is filled once, when it ends. Progress and the
     * end are ordered by the hold's monitor, so a settlement sees every progress recorded before it.
     * {@code label} (null: not given) is what recovery reports of it.
     */
    private record Hold(Reservation reservation, ReservationLabel label, AtomicReference<Settlement> outcome,
                        AtomicLong progress, AtomicBoolean recovered) {
    }

    /** @param requestId the request its settlement billed, kept for {@link #request}; null for none */
    private record Ended(long reservationId, String requestId, Instant at) {
    }

    private record Credit(String accountId, long amountNanoton) {
    }

    private final Clock clock;
    private final Duration endedRetention;
    private final ConcurrentHashMap<String, Ledger> accounts = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, String> accountsByComment = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, Credit> credits = new ConcurrentHashMap<>();
    private final Object creditOnceLock = new Object();
    private final ConcurrentHashMap<Long, Hold> holds = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, BilledRequest> billed = new ConcurrentHashMap<>();
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
        return accounts.computeIfAbsent(accountId, id -> {
            String comment;
            do {
                comment = DepositComments.random();
            } while (accountsByComment.putIfAbsent(comment, id) != null);
            return new Ledger(new Account(id, comment, clock.instant()), new AtomicReference<>(AccountState.empty(id)));
        }).account();
    }

    @Override
    public AccountState balance(String accountId) {
        return ledger(accountId).state().get();
    }

    @Override
    public Account account(String accountId) {
        return ledger(accountId).account();
    }

    @Override
    public Optional<Account> accountByDepositComment(String depositComment) {
        return Optional.ofNullable(depositComment == null ? null : accountsByComment.get(depositComment))
                .map(id -> accounts.get(id).account());
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
    public boolean creditOnce(String accountId, long amountNanoton, String reference) {
        ledger(accountId);
        if (reference == null || reference.isBlank()) {
            throw new IllegalArgumentException("a credit needs a reference");
        }
        // One at a time: two calls for one family must not both find it empty.
        synchronized (creditOnceLock) {
            String family = reference + ":";
            Credit first = credits.get(reference);
            if (first != null && !first.accountId().equals(accountId)) {
                throw new CreditConflictException(reference, first.accountId(), first.amountNanoton(), accountId, amountNanoton);
            }
            if (first != null || credits.entrySet().stream()
                    .anyMatch(e -> e.getKey().startsWith(family) && e.getValue().accountId().equals(accountId))) {
                return false;
            }
            return credit(accountId, amountNanoton, reference);
        }
    }

    @Override
    public Reservation reserve(String accountId, long amountNanoton, ReservationLabel label) {
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
        holds.put(reservation.id(), new Hold(reservation, label, new AtomicReference<>(), new AtomicLong(), new AtomicBoolean()));
        return reservation;
    }

    @Override
    public Settlement settle(Reservation reservation, long actualCostNanoton) {
        LongFunction<Settlement> outcome = charge(reservation, actualCostNanoton);
        return end(hold(reservation), outcome, false, null);
    }

    @Override
    public Settlement settle(Reservation reservation, RequestRecord request) {
        Objects.requireNonNull(request, "request");
        return end(hold(reservation), charge(reservation, request.clientCostNanoton()), false, request);
    }

    private static LongFunction<Settlement> charge(Reservation reservation, long actualCostNanoton) {
        if (actualCostNanoton < 0) {
            throw new IllegalArgumentException("an actual cost must be >= 0, got " + actualCostNanoton);
        }
        return progress -> Settlement.charge(reservation, Math.max(actualCostNanoton, progress));
    }

    @Override
    public Optional<BilledRequest> request(String accountId, String requestId) {
        AccountState.checkId(accountId);
        return Optional.ofNullable(requestId == null ? null : billed.get(requestId))
                .filter(request -> request.accountId().equals(accountId));
    }

    @Override
    public Settlement release(Reservation reservation) {
        return end(hold(reservation), atProgress(reservation), false, null);
    }

    /** A release after recorded progress is a settlement at that progress: that usage happened. */
    private static LongFunction<Settlement> atProgress(Reservation reservation) {
        return progress -> progress == 0 ? Settlement.release(reservation) : Settlement.charge(reservation, progress);
    }

    @Override
    public boolean recordProgress(Reservation reservation, long costSoFarNanoton) {
        if (costSoFarNanoton < 0) {
            throw new IllegalArgumentException("progress must be >= 0 nanoTON, got " + costSoFarNanoton);
        }
        Hold hold = hold(reservation);
        synchronized (hold) {
            if (hold.outcome().get() != null) {
                refuseIfRecovered(hold);
                return false;
            }
            hold.progress().accumulateAndGet(costSoFarNanoton, Math::max);
            return true;
        }
    }

    @Override
    public void recordProgress(Map<Reservation, Long> progress) {
        progress.values().forEach(cost -> {
            if (cost < 0) {
                throw new IllegalArgumentException("progress must be >= 0 nanoTON, got " + cost);
            }
        });
        // All or nothing on a recovered reservation, as the durable book's transaction is.
        progress.keySet().forEach(reservation -> {
            Hold hold = holds.get(reservation.id());
            if (hold != null && hold.reservation().equals(reservation)) {
                refuseIfRecovered(hold);
            }
        });
        progress.forEach((reservation, cost) -> {
            try {
                recordProgress(reservation, cost);
            } catch (UnknownReservationException e) {
                // skipped, as the durable book skips it
            }
        });
    }

    @Override
    public List<RecoveredReservation> recoverOpenReservations() {
        List<RecoveredReservation> ended = new ArrayList<>();
        List<Hold> open = holds.values().stream().filter(h -> h.outcome().get() == null)
                .sorted(Comparator.comparingLong(h -> h.reservation().id())).toList();
        for (Hold hold : open) {
            Settlement settlement = end(hold, atProgress(hold.reservation()), true, null);
            if (hold.recovered().get()) {   // not settled by its owner meanwhile
                // Progress is all this book keeps of a checkpoint: no worker, no tokens, so no record.
                ended.add(new RecoveredReservation(settlement, hold.label(), null, null));
            }
        }
        return ended;
    }

    private static void refuseIfRecovered(Hold hold) {
        if (hold.recovered().get()) {
            throw new ReservationRecoveredException(hold.outcome().get(), "this book's recoverOpenReservations");
        }
    }

    private Hold hold(Reservation reservation) {
        Hold hold = holds.get(reservation.id());
        if (hold == null) {
            throw new UnknownReservationException(reservation,
                    "never issued by this book, or ended more than " + endedRetention + " ago");
        }
        if (!hold.reservation().equals(reservation)) {
            throw new UnknownReservationException(reservation, "this book issued " + hold.reservation());
        }
        return hold;
    }

    /**
     * Applies the outcome if it is the first for this reservation, and keeps {@code request} (null
     * for none) for {@link #request} if so; otherwise returns the first outcome, or refuses the
     * owner's call on a reservation that recovery ended.
     */
    private Settlement end(Hold hold, LongFunction<Settlement> outcomeAtProgress, boolean recovering, RequestRecord request) {
        Reservation reservation = hold.reservation();
        Settlement outcome;
        synchronized (hold) {
            Settlement first = hold.outcome().get();
            if (first != null) {
                if (!recovering) {
                    refuseIfRecovered(hold);
                }
                return first;
            }
            outcome = outcomeAtProgress.apply(hold.progress().get());
            hold.outcome().set(outcome);
            hold.recovered().set(recovering);   // after the outcome: a reader seeing it recovered finds the outcome
        }
        // Only the thread that filled the slot gets here, once per reservation; the account's own
        // compare-and-set keeps it lock-free against other reservations.
        update(ledger(reservation.accountId()), s -> new AccountState(s.accountId(),
                Math.subtractExact(s.balanceNanoton(), outcome.chargedNanoton()),
                s.reservedNanoton() - reservation.amountNanoton(),
                Math.addExact(s.spentNanoton(), outcome.chargedNanoton())));
        Instant now = clock.instant();
        if (request != null) {
            billed.put(request.requestId(), new BilledRequest(request.requestId(), reservation.accountId(), request.model(),
                    request.tokens(), outcome.chargedNanoton(), now));
        }
        ended.add(new Ended(reservation.id(), request == null ? null : request.requestId(), now));
        forgetExpired();
        return outcome;
    }

    /** Drops the outcomes of reservations that ended more than the retention ago. */
    private void forgetExpired() {
        Instant cutoff = clock.instant().minus(endedRetention);
        for (Ended oldest; (oldest = ended.peek()) != null && oldest.at().isBefore(cutoff); ) {
            if (ended.remove(oldest)) {   // only one thread wins each entry
                holds.remove(oldest.reservationId());
                if (oldest.requestId() != null) {
                    billed.remove(oldest.requestId());
                }
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
