package org.cocoonjvm.billing.chain;

/**
 * Where confirmed deposits go: the client ledger. An implementation maps the comment to the account
 * it was issued for and credits it with {@code txHash} as the reference, at most once per reference
 * (AccountBook.credit keeps that promise), so a rescan after a restart is safe.
 */
@FunctionalInterface
public interface DepositSink {
    Outcome credit(String comment, long amountNanoton, String txHash);

    enum Outcome {
        CREDITED,
        /** This transaction was credited before (a rescan). */
        ALREADY_CREDITED,
        /**
         * No account has this deposit comment; the coins stay in the wallet for manual handling.
         */
        UNKNOWN_COMMENT
    }
}
