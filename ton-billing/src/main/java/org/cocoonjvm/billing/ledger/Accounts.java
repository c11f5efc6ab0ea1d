package org.cocoonjvm.billing.ledger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.util.Optional;
import org.cocoonjvm.billing.accounts.Account;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.billing.accounts.CreditConflictException;
import org.cocoonjvm.billing.accounts.DepositComments;
import org.cocoonjvm.billing.accounts.UnknownAccountException;

/**
 * The {@code accounts} and {@code credits} tables: opening accounts, reading them, crediting
 * deposits once per reference, and the two statements every money change goes through (the
 * account's row, read or locked, and {@link #addToTotals}). Separate from the reservations so that
 * the running totals have one owner: the other parts change them only through these helpers.
 */
final class Accounts {
    private final Clock clock;
    private final Transactions transactions;

    Accounts(Clock clock, Transactions transactions) {
        this.clock = clock;
        this.transactions = transactions;
    }

    Account open(String accountId) {
        AccountState.checkId(accountId);
        // A unique violation (another opener won, or the random comment collided) rolls back and
        // runs this again: the first case then finds the account, the second draws a new comment.
        return transactions.tx("open", c -> {
            Optional<Account> existing = find(c, "account_id", accountId);
            if (existing.isPresent()) {
                return existing.get();
            }
            Account account = new Account(accountId, DepositComments.random(),
                    Micros.toInstant(Micros.of(clock.instant())));
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO accounts (account_id, deposit_comment, "
                    + "opened_at_micros, balance_nanoton, reserved_nanoton, spent_nanoton) VALUES (?, ?, ?, 0, 0, 0)")) {
                ps.setString(1, accountId);
                ps.setString(2, account.depositComment());
                ps.setLong(3, Micros.of(account.openedAt()));
                ps.executeUpdate();
            }
            return account;
        });
    }

    AccountState balance(String accountId) {
        AccountState.checkId(accountId);
        return transactions.tx("balance", c -> state(c, accountId, false));
    }

    Account account(String accountId) {
        AccountState.checkId(accountId);
        return transactions.tx("account", c -> find(c, "account_id", accountId)
                .orElseThrow(() -> new UnknownAccountException(accountId)));
    }

    Optional<Account> byDepositComment(String depositComment) {
        if (!DepositComments.wellFormed(depositComment)) {
            return Optional.empty();
        }
        return transactions.tx("account by deposit comment", c -> find(c, "deposit_comment", depositComment));
    }

    boolean credit(String accountId, long amountNanoton, String reference) {
        checkCredit(accountId, amountNanoton, reference);
        return transactions.tx("credit", c -> {
            AccountState s = state(c, accountId, true);
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT account_id, amount_nanoton FROM credits WHERE reference = ?")) {
                ps.setString(1, reference);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        String firstAccount = rs.getString(1);
                        long firstAmount = rs.getLong(2);
                        if (!firstAccount.equals(accountId) || firstAmount != amountNanoton) {
                            throw new CreditConflictException(reference, firstAccount, firstAmount, accountId, amountNanoton);
                        }
                        return false;
                    }
                }
            }
            return insertCredit(c, s, amountNanoton, reference);
        });
    }

    boolean creditOnce(String accountId, long amountNanoton, String reference) {
        checkCredit(accountId, amountNanoton, reference);
        return transactions.tx("credit once", c -> {
            // The account's row lock makes two calls for one account take turns: the second finds
            // the first's credit (and a racing insert of the same reference is a 23505, run again).
            AccountState s = state(c, accountId, true);
            try (PreparedStatement ps = c.prepareStatement("SELECT reference, account_id, amount_nanoton FROM credits "
                    + "WHERE account_id = ? AND (reference = ? OR reference LIKE ? ESCAPE '!') "
                    + "UNION ALL SELECT reference, account_id, amount_nanoton FROM credits WHERE reference = ?")) {
                ps.setString(1, accountId);
                ps.setString(2, reference);
                ps.setString(3, reference.replaceAll("([!%_])", "!$1") + ":%");
                ps.setString(4, reference);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        if (!rs.getString(2).equals(accountId)) {
                            throw new CreditConflictException(rs.getString(1), rs.getString(2), rs.getLong(3),
                                    accountId, amountNanoton);
                        }
                        return false;
                    }
                }
            }
            return insertCredit(c, s, amountNanoton, reference);
        });
    }

    /** What {@link #credit} and {@link #creditOnce} refuse before any round trip. */
    private static void checkCredit(String accountId, long amountNanoton, String reference) {
        AccountState.checkId(accountId);
        if (amountNanoton <= 0) {
            throw new IllegalArgumentException("a credit must be > 0 nanoTON, got " + amountNanoton);
        }
        if (reference == null || reference.isBlank()) {
            throw new IllegalArgumentException("a credit needs a reference");
        }
    }

    /** Writes a credit the caller found new, and adds it to the balance. */
    private boolean insertCredit(Connection c, AccountState s, long amountNanoton, String reference) throws SQLException {
        Math.addExact(s.balanceNanoton(), amountNanoton);   // throws before anything is written
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO credits (reference, account_id, amount_nanoton, "
                + "credited_at_micros) VALUES (?, ?, ?, ?)")) {
            ps.setString(1, reference);
            ps.setString(2, s.accountId());
            ps.setLong(3, amountNanoton);
            ps.setLong(4, Micros.of(clock.instant()));
            ps.executeUpdate();
        }
        addToTotals(c, s.accountId(), amountNanoton, 0, 0);
        return true;
    }

    /** The account's totals; {@code lock} takes its row lock, which every money change takes first. */
    static AccountState state(Connection c, String accountId, boolean lock) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT balance_nanoton, reserved_nanoton, spent_nanoton "
                + "FROM accounts WHERE account_id = ?" + (lock ? " FOR UPDATE" : ""))) {
            ps.setString(1, accountId);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw new UnknownAccountException(accountId);
                }
                return new AccountState(accountId, rs.getLong(1), rs.getLong(2), rs.getLong(3));
            }
        }
    }

    /**
     * Changes the running totals relative to what is stored when the statement runs, never by
     * writing back values read earlier: a stale read can then cost nothing (see the class comment
     * of {@link JdbcAccountBook}).
     */
    static void addToTotals(Connection c, String accountId, long balanceDelta, long reservedDelta,
                            long spentDelta) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE accounts SET balance_nanoton = balance_nanoton + ?, "
                + "reserved_nanoton = reserved_nanoton + ?, spent_nanoton = spent_nanoton + ? WHERE account_id = ?")) {
            ps.setLong(1, balanceDelta);
            ps.setLong(2, reservedDelta);
            ps.setLong(3, spentDelta);
            ps.setString(4, accountId);
            if (ps.executeUpdate() != 1) {
                throw new SQLException("account " + accountId + " vanished inside its own transaction");
            }
        }
    }

    private static Optional<Account> find(Connection c, String column, String value) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT account_id, deposit_comment, opened_at_micros "
                + "FROM accounts WHERE " + column + " = ?")) {
            ps.setString(1, value);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Account(rs.getString(1), rs.getString(2), Micros.toInstant(rs.getLong(3))))
                        : Optional.empty();
            }
        }
    }
}
