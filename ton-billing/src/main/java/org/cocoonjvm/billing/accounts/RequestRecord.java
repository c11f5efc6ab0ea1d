package org.cocoonjvm.billing.accounts;

import java.util.Objects;
import org.cocoonjvm.billing.pricing.TokenCounts;

/**
 * What one request used and cost, kept with its settlement so an operator can audit the gateway's
 * margin ({@code clientCost - workerFee}) per request, worker and account.
 *
 * @param requestId         the gateway's request id (shown to the client)
 * @param workerId          the worker that served it; null if none did
 * @param channelId         the payment channel its worker fee is paid on (lowercase hex, as the
 *                          channel journal stores it); null if the gateway pays no channels
 * @param model             the model asked for
 * @param tokens            the usage the worker reported
 * @param clientCostNanoton what the client is charged for that usage
 * @param workerFeeNanoton  what the worker is owed for it
 */
public record RequestRecord(String requestId, String workerId, String channelId, String model, TokenCounts tokens,
                            long clientCostNanoton, long workerFeeNanoton) {
    public RequestRecord {
        if (requestId == null || requestId.isBlank()) {
            throw new IllegalArgumentException("a request record needs a request id");
        }
        if (channelId != null && channelId.isBlank()) {
            throw new IllegalArgumentException("request " + requestId + ": a blank channel id (null: no channel)");
        }
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tokens, "tokens");
        if (clientCostNanoton < 0 || workerFeeNanoton < 0 || workerFeeNanoton > clientCostNanoton) {
            throw new IllegalArgumentException("request " + requestId + ": need 0 <= worker fee <= client cost, got fee "
                    + workerFeeNanoton + ", cost " + clientCostNanoton);
        }
    }

    public long gatewayMarginNanoton() {
        return clientCostNanoton - workerFeeNanoton;
    }
}
