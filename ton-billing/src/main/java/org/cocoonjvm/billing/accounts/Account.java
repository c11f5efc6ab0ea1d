package org.cocoonjvm.billing.accounts;

import java.time.Instant;
import java.util.Objects;

/**
 * A client account as opened.
 *
 * @param accountId the gateway's id for the client (for example a hash of its API key)
 * @param openedAt  when it was first opened; opening it again does not change this
 */
public record Account(String accountId, Instant openedAt) {
    public Account {
        AccountState.checkId(accountId);
        Objects.requireNonNull(openedAt, "openedAt");
    }
}
