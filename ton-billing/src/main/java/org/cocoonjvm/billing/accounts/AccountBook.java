package org.cocoonjvm.billing.accounts;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Client balances in nanoTON and the hold that brackets every request:
 * {@link #reserve} before forwarding, then exactly one of {@link #settle} (it ran) or
 * {@link #release} (it never ran). Implementations are thread-safe.
 *
 * <p>The guarantees every implementation keeps, in memory or durable:
 * <ul>
 *   <li>a reservation never takes more than is available;</li>
 *   <li>a reservation ends once: a second settle or release changes nothing and returns the
 *       first {@link Settlement};</li>
 *   <li>a deposit is credited once per reference;</li>
 *   <li>usage is never dropped: a cost above its reservation is charged in full, and a
 *       settlement charges at least the last {@link #recordProgress progress} recorded;</li>
 *   <li>{@code balance + spent == credits} for every account, and {@code reserved} is the sum of
 *       its open reservations;</li>
 *   <li>a reservation that recovery ended refuses its owner's later {@code settle}, {@code release}
 *       and {@code recordProgress} with {@link ReservationRecoveredException}: that usage is not
 *       billed, so whoever asked must not pay a worker for it.</li>
 * </ul>
 *
 * <p>Crash safety, for books that survive a restart: the caller records a request's metered cost
 * with {@link #recordProgress} before it acknowledges that usage to anyone (for example before it
 * sends a worker a signed payment state covering it), and calls {@link #recoverOpenReservations}
 * at start, before taking requests. Then a crash at any point loses no acknowledged usage and
 * bills nothing twice.
 */
public interface AccountBook {

    /** Opens the account, or returns it unchanged if it is already open. */
    Account open(String accountId);

    /** @throws UnknownAccountException if the account was never opened */
    AccountState balance(String accountId);

    /** @throws UnknownAccountException if the account was never opened */
    Account account(String accountId);

    /** The account whose deposit comment this is, for the deposit watcher; empty if none. */
    Optional<Account> accountByDepositComment(String depositComment);

    /**
     * Adds a deposit to the balance, once per {@code reference}.
     *
     * @param reference names the deposit, unique across accounts (for example the transaction hash)
     * @return true if credited now, false if this reference was already credited
     * @throws UnknownAccountException  if the account was never opened
     * @throws CreditConflictException  if the reference was credited with another account or amount
     */
    boolean credit(String accountId, long amountNanoton, String reference);

    /**
     * Adds {@code amountNanoton} once per {@code reference} <em>whatever the amount</em>: nothing
     * if this account was already credited under {@code reference}, or under a reference that
     * begins with {@code reference + ":"}, however much. For a grant given once per account whose
     * amount may change between starts: the start grant ({@code --grant-nanoton}) is credited as
     * {@code grant-at-start:<account>}, and counts the grants of builds that named the amount too
     * ({@code grant-at-start:<account>:<amount>}).
     *
     * @return true if credited now, false if already credited under this reference or one of its family
     * @throws UnknownAccountException  if the account was never opened
     * @throws CreditConflictException  if {@code reference} itself was credited to another account
     */
    boolean creditOnce(String accountId, long amountNanoton, String reference);

    /**
     * Holds {@code amountNanoton} for one request.
     *
     * @param label which request it is for, kept with it so that a recovery that ends it can say
     *              (see {@link RecoveredReservation}); null for none
     * @throws InsufficientBalanceException if less than that is available
     * @throws UnknownAccountException      if the account was never opened
     */
    Reservation reserve(String accountId, long amountNanoton, ReservationLabel label);

    /** {@link #reserve(String, long, ReservationLabel) Holds} for a request the book need not know. */
    default Reservation reserve(String accountId, long amountNanoton) {
        return reserve(accountId, amountNanoton, null);
    }

    /**
     * Charges the request's actual cost and releases the rest of the hold. A cost above the hold is
     * still charged in full and reported as {@link Settlement#overrunNanoton()}.
     *
     * @return this call's settlement, or the first one if the reservation already ended
     * @throws UnknownReservationException if this book has no record of the reservation
     * @throws ReservationRecoveredException if recovery ended it (its outcome is in the exception)
     */
    Settlement settle(Reservation reservation, long actualCostNanoton);

    /**
     * {@link #settle(Reservation, long) Settles} at the request's client cost and keeps the record
     * with the settlement, in one step, for the operator's audit and for the client's {@link #request}
     * lookup. The in-memory book keeps only what that lookup needs, and only for a while.
     */
    Settlement settle(Reservation reservation, RequestRecord request);

    /**
     * The request {@code requestId} of account {@code accountId}, as the settlement that kept its
     * {@link RequestRecord} billed it. Empty when the account has no such record: the id is unknown
     * or another account's (never told apart, so that no caller learns of another's requests), the
     * request has not settled yet, or it ended without one (released for want of usage, or ended by
     * recovery at its last progress without the checkpoint's usage: see {@link #recoverOpenReservations}).
     * Durable books keep records for good; the in-memory one as long as it keeps the outcome of an
     * ended reservation.
     */
    Optional<BilledRequest> request(String accountId, String requestId);

    /**
     * Records that the request behind {@code reservation} has used {@code costSoFarNanoton}. Progress
     * only rises (a lower value changes nothing); any later settlement charges at least the highest
     * progress recorded, and {@link #recoverOpenReservations} charges exactly that.
     *
     * @return true if the reservation is still open (the progress counts), false if it already ended
     * @throws UnknownReservationException if this book has no record of the reservation
     * @throws ReservationRecoveredException if recovery ended it
     */
    boolean recordProgress(Reservation reservation, long costSoFarNanoton);

    /**
     * {@link #recordProgress(Reservation, long) Records} the progress of many requests at once, as
     * one write for a durable book (all of it or none). Ended or unknown reservations are skipped:
     * a payment round may checkpoint a request that settled meanwhile, and its settlement already
     * charges at least this.
     */
    void recordProgress(Map<Reservation, Long> progress);

    /**
     * {@link #recordProgress(Map)}, and in the same write what each request's usage owes its
     * worker ({@code shares}, keyed like {@code progress}), so that a payer restarted after a crash
     * can pay each channel the fees of everything the book bills on it. A book that does not
     * survive a restart has nothing to pay from after one: it keeps the progress alone.
     */
    default void recordProgress(Map<Reservation, Long> progress, Map<Reservation, WorkerShare> shares) {
        recordProgress(progress);
    }

    /**
     * Ends every open reservation of this book's owner (a durable book shared by several gateways:
     * of this gateway) at its last recorded progress: settled at that cost, or released if none was
     * recorded. Call it once at start, before any request is admitted; a reservation opened by a
     * request still running would be ended under it, and refuse that request's settlement. A
     * durable book keeps a {@link RequestRecord} with each one it charges whose {@link
     * ReservationLabel label} and checkpointed usage it holds (the usage its last checkpoint bills,
     * the fee that checkpoint owed the worker), so that {@link #request} finds it.
     *
     * @return what this call ended (not what another ended meanwhile), in reservation order
     */
    List<RecoveredReservation> recoverOpenReservations();

    /**
     * Gives the whole hold back, for a request that never ran.
     *
     * @return this call's settlement, or the first one if the reservation already ended
     * @throws UnknownReservationException if this book has no record of the reservation
     * @throws ReservationRecoveredException if recovery ended it (its outcome is in the exception)
     */
    Settlement release(Reservation reservation);

    /**
     * Why this book cannot reach its storage, while it is known not to: a book over a database
     * says so once a call lost its connection (or could not get one) and until a call succeeds
     * again. Empty while it answers, and always for a book in memory. Cheap: it reads what the last
     * calls found, it runs none.
     */
    default Optional<String> outage() {
        return Optional.empty();
    }

    /**
     * Why its storage looks hung, while it does: a call it has left unanswered for longer than any
     * call takes. New calls would only queue behind that one (for as long as the storage hangs, up
     * to its driver's time limits), so a caller refuses or defers them at once instead. Empty while
     * calls come back, and always for a book in memory. Cheap: runs no call.
     */
    default Optional<String> stall() {
        return Optional.empty();
    }

    /** The races {@link #racesRunAgain} counts. */
    List<String> RACES = List.of("deadlock", "serialization", "lock_timeout", "duplicate_key");

    /**
     * Transactions that lost a race with another and were run again, since this book opened, keyed
     * by the race (one of {@link #RACES}); each run again cost its caller a wait. Empty for a book
     * in memory.
     */
    default Map<String, Long> racesRunAgain() {
        return Map.of();
    }
}
