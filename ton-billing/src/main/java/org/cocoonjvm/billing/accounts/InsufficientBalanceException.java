package org.cocoonjvm.billing.accounts;

/** A reservation asked for more than the account has available. */
public final class InsufficientBalanceException extends AccountException {
    private final String accountId;
    private final long requestedNanoton;
    private final long availableNanoton;

    public InsufficientBalanceException(String accountId, long requestedNanoton, long availableNanoton) {
        super("account " + accountId + " has " + availableNanoton + " nanoTON available, "
                + requestedNanoton + " requested", false);
        this.accountId = accountId;
        this.requestedNanoton = requestedNanoton;
        this.availableNanoton = availableNanoton;
    }

    public String accountId() {
        return accountId;
    }

    public long requestedNanoton() {
        return requestedNanoton;
    }

    public long availableNanoton() {
        return availableNanoton;
    }

    @Override
    public String code() {
        return "insufficient_balance";
    }
}
