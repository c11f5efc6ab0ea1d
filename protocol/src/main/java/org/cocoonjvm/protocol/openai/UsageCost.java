package org.cocoonjvm.protocol.openai;

/**
 * What a completion cost the client, in nanoTON, added to {@code usage} under Cocoon's field
 * names. Only the gateway knows prices; a worker's own API sends usage without cost.
 */
public record UsageCost(long promptTotalCost, long completionTotalCost, long totalCost) {
    public UsageCost {
        if (promptTotalCost < 0 || completionTotalCost < 0 || totalCost != promptTotalCost + completionTotalCost) {
            throw new IllegalArgumentException("inconsistent cost: " + promptTotalCost + " + " + completionTotalCost + " != " + totalCost);
        }
    }
}
