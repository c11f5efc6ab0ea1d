package org.cocoonjvm.billing.ledger;

import java.sql.SQLException;

/**
 * The ledger's database failed an operation (down, full, a constraint this code did not expect).
 * The operation's transaction was rolled back, so nothing of it took effect; it is safe to retry.
 */
public final class LedgerUnavailableException extends RuntimeException {
    public LedgerUnavailableException(String operation, SQLException cause) {
        super("ledger " + operation + " failed: " + cause.getMessage() + " (SQLState " + cause.getSQLState() + ")", cause);
    }
}
