package org.cocoonjvm.billing.accounts;

/** The account was never opened in this book. */
public final class UnknownAccountException extends AccountException {
    private final String accountId;

    public UnknownAccountException(String accountId) {
        super("no account " + accountId + " (open it first)", false);
        this.accountId = accountId;
    }

    public String accountId() {
        return accountId;
    }

    @Override
    public String code() {
        return "unknown_account";
    }
}
