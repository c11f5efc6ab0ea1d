package org.cocoonjvm.billing.accounts;

/**
 * Money held for one request, from {@link AccountBook#reserve} until the request is settled or
 * released. It is only a receipt: the book that issued it keeps the state, so a copy settled twice
 * is still settled once.
 *
 * @param accountId     the account it was taken from
 * @param id            unique within the book that issued it
 * @param amountNanoton what is held
 */
public record Reservation(String accountId, long id, long amountNanoton) {
    public Reservation {
        AccountState.checkId(accountId);
        if (amountNanoton < 0) {
            throw new IllegalArgumentException("a reservation must be >= 0 nanoTON, got " + amountNanoton);
        }
    }
}
