package org.cocoonjvm.billing.accounts;

/**
 * Why an account operation was refused. The gateway maps {@link #code()} (stable, snake_case) to
 * an HTTP status in one table; the message carries the values involved.
 */
public abstract sealed class AccountException extends RuntimeException
        permits InsufficientBalanceException, UnknownAccountException, UnknownReservationException,
                CreditConflictException, ReservationRecoveredException {

    /**
     * @param stackTrace false for refusals that are ordinary outcomes on the request path, where a
     *                   stack trace would cost time and tell nothing
     */
    AccountException(String message, boolean stackTrace) {
        super(message, null, false, stackTrace);
    }

    public abstract String code();
}
