package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.junit.jupiter.api.Test;

/** Ledgers from before accounts were named by digest: their positional accounts are reported, not reused. */
class ClientKeysTest {
    private final InMemoryAccountBook book = new InMemoryAccountBook(Clock.systemUTC());

    @Test
    void positionalAccounts_areNamedWithWhatTheyHold() {
        book.open("account-1");
        book.open("account-2");
        book.credit("account-1", 700, "deposit-1");
        book.credit("account-2", 300, "deposit-2");
        assertThat(ClientKeys.positionalAccounts(book)).hasValue("ledger: account-1 to account-2 (1000 nanoTON in all) "
                + "were named by their key's position on the command line; no key reaches them now "
                + "(gateway/README.md, \"Accounts\")");
    }

    @Test
    void aLedgerWithDigestNamedAccountsOnly_hasNoWarning() {
        book.open("account-36c76b48bb2ee1d9");
        assertThat(ClientKeys.positionalAccounts(book)).isEmpty();
    }
}
