package org.cocoonjvm.billing.accounts;

import java.time.Instant;
import java.util.Objects;
import org.cocoonjvm.billing.pricing.TokenCounts;

/**
 * One settled request as its own client may see it ({@link AccountBook#request}): what it used and
 * what its account paid. Which worker served it and what that worker earned stay the operator's
 * ({@link RequestRecord}).
 *
 * @param requestId      the gateway's request id
 * @param accountId      the account it was billed to
 * @param model          the model asked for
 * @param tokens         the usage the worker reported
 * @param chargedNanoton what the settlement took from the balance: the priced usage, or the
 *                       request's recorded progress where that was higher (a settlement charges
 *                       at least its last progress)
 * @param settledAt      when the book took the settlement
 */
public record BilledRequest(String requestId, String accountId, String model, TokenCounts tokens, long chargedNanoton,
                            Instant settledAt) {
    public BilledRequest {
        Objects.requireNonNull(requestId, "requestId");
        AccountState.checkId(accountId);
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(settledAt, "settledAt");
        if (chargedNanoton < 0) {
            throw new IllegalArgumentException("request " + requestId + ": charged " + chargedNanoton + " nanoTON");
        }
    }
}
