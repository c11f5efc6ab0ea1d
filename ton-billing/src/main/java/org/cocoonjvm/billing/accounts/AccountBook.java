package org.cocoonjvm.billing.accounts;

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
 *   <li>usage is never dropped: a cost above its reservation is charged in full.</li>
 * </ul>
 */
public interface AccountBook {

    /** Opens the account, or returns it unchanged if it is already open. */
    Account open(String accountId);

    /** @throws UnknownAccountException if the account was never opened */
    AccountState balance(String accountId);

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
     * Holds {@code amountNanoton} for one request.
     *
     * @throws InsufficientBalanceException if less than that is available
     * @throws UnknownAccountException      if the account was never opened
     */
    Reservation reserve(String accountId, long amountNanoton);

    /**
     * Charges the request's actual cost and releases the rest of the hold. A cost above the hold is
     * still charged in full and reported as {@link Settlement#overrunNanoton()}.
     *
     * @return this call's settlement, or the first one if the reservation already ended
     * @throws UnknownReservationException if this book has no record of the reservation
     */
    Settlement settle(Reservation reservation, long actualCostNanoton);

    /**
     * Gives the whole hold back, for a request that never ran.
     *
     * @return this call's settlement, or the first one if the reservation already ended
     * @throws UnknownReservationException if this book has no record of the reservation
     */
    Settlement release(Reservation reservation);
}
