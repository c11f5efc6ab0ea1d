package org.cocoonjvm.billing.ledger;

import java.sql.SQLException;

/**
 * The ledger's database failed an operation (down, unreachable, full, a constraint this code did
 * not expect). The operation's transaction was rolled back, so nothing of it took effect, except
 * when the connection was lost at its COMMIT: then it may have. Retry what is safe to run twice
 * (ending a reservation is: a second end returns the first outcome).
 */
public final class LedgerUnavailableException extends RuntimeException {
    public LedgerUnavailableException(String operation, SQLException cause) {
        super("ledger " + operation + " failed: " + cause.getMessage() + " (SQLState " + cause.getSQLState() + ")", cause);
    }

    /** Not tried: {@code why} the database would not have answered (see {@code AccountBook.stall}). */
    public LedgerUnavailableException(String operation, String why) {
        super("ledger " + operation + " not tried: " + why);
    }
}
