package org.cocoonjvm.billing.accounts;

/**
 * A credit reused a reference that was already credited with a different account or amount. A
 * reference names one deposit (for example a transaction hash), so this is a bug or an attack,
 * never a retry, and nothing is credited.
 */
public final class CreditConflictException extends AccountException {
    private final String reference;

    public CreditConflictException(String reference, String firstAccountId, long firstAmountNanoton,
                                   String accountId, long amountNanoton) {
        super("reference " + reference + " already credited " + firstAmountNanoton + " nanoTON to "
                + firstAccountId + "; refusing " + amountNanoton + " nanoTON to " + accountId, true);
        this.reference = reference;
    }

    public String reference() {
        return reference;
    }

    @Override
    public String code() {
        return "credit_conflict";
    }
}
