package org.cocoonjvm.billing.accounts;

/**
 * One consistent view of an account, in nanoTON.
 *
 * <p>{@code balance} is what was credited minus what was spent; {@code reserved} is held for
 * requests in flight; {@link #availableNanoton()} is what a new reservation can take. A reservation never
 * makes {@code available} negative. Only a settlement that overruns its reservation can (the usage
 * happened and is billed in full), and then the account takes no new reservation until credited.
 *
 * @param balanceNanoton  credited minus spent; negative only after an overrun larger than the funds
 * @param reservedNanoton held for requests in flight, >= 0
 * @param spentNanoton    charged so far, >= 0
 */
public record AccountState(String accountId, long balanceNanoton, long reservedNanoton,
                           long spentNanoton) {
    public AccountState {
        checkId(accountId);
        if (reservedNanoton < 0 || spentNanoton < 0) {
            throw new IllegalArgumentException("reserved and spent must be >= 0, got "
                    + reservedNanoton + " and " + spentNanoton + " for " + accountId);
        }
    }

    public static AccountState empty(String accountId) {
        return new AccountState(accountId, 0, 0, 0);
    }

    public long availableNanoton() {
        return Math.subtractExact(balanceNanoton, reservedNanoton);
    }

    /** Rejects a null or blank account id; every book checks ids this way. */
    public static void checkId(String accountId) {
        if (accountId == null || accountId.isBlank()) {
            throw new IllegalArgumentException("an account id must not be blank");
        }
    }
}
