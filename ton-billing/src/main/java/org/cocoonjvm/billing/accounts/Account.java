package org.cocoonjvm.billing.accounts;

import java.time.Instant;
import java.util.Objects;

/**
 * A client account as opened.
 *
 * @param accountId      the gateway's id for the client (for example a hash of its API key)
 * @param depositComment what the client writes in the comment of a TON transfer to the gateway's
 *                       wallet so that the deposit is credited here; random, unique, never changes
 * @param openedAt       when it was first opened; opening it again does not change this
 */
public record Account(String accountId, String depositComment, Instant openedAt) {
    public Account {
        AccountState.checkId(accountId);
        DepositComments.check(depositComment);
        Objects.requireNonNull(openedAt, "openedAt");
    }
}
