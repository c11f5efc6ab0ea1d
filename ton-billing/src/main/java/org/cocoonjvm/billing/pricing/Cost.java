package org.cocoonjvm.billing.pricing;

/**
 * What one request costs, in nanoTON. Both splits add up exactly: the client's cost is the
 * worker's fee plus the gateway's margin, and it is also the prompt's cost plus the completion's.
 *
 * @param adjustedTokens the token count after coefficient and multipliers (Cocoon's "total")
 * @param clientCost     what the client is charged
 * @param workerFee      what the worker is owed
 * @param gatewayMargin  what the gateway keeps
 * @param promptCost     the part of {@code clientCost} due to prompt tokens (cached included)
 * @param completionCost the part due to completion tokens (reasoning included)
 */
public record Cost(long adjustedTokens, long clientCost, long workerFee, long gatewayMargin,
                   long promptCost, long completionCost) {
    public static final Cost ZERO = new Cost(0, 0, 0, 0, 0, 0);

    public Cost {
        if (adjustedTokens < 0 || clientCost < 0 || workerFee < 0 || gatewayMargin < 0
                || promptCost < 0 || completionCost < 0) {
            throw new IllegalArgumentException("cost parts must be >= 0: " + describe(
                    adjustedTokens, clientCost, workerFee, gatewayMargin, promptCost, completionCost));
        }
        // All parts are non-negative, so a sum that wrapped would be negative and fail here too.
        if (workerFee + gatewayMargin != clientCost || promptCost + completionCost != clientCost) {
            throw new IllegalArgumentException("cost parts do not add up: " + describe(
                    adjustedTokens, clientCost, workerFee, gatewayMargin, promptCost, completionCost));
        }
    }

    private static String describe(long adjustedTokens, long clientCost, long workerFee,
                                   long gatewayMargin, long promptCost, long completionCost) {
        return "adjustedTokens " + adjustedTokens + ", clientCost " + clientCost + ", workerFee "
                + workerFee + ", gatewayMargin " + gatewayMargin + ", promptCost " + promptCost
                + ", completionCost " + completionCost;
    }
}
