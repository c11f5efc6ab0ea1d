package org.cocoonjvm.gateway.billing;

import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.UsageCost;

/**
 * Money for one request: reserve the most it can cost before it is routed, bill what it used
 * when it ends. Implemented over ton-billing's pricing and account book.
 */
public interface RequestBilling {
    /**
     * @param accountId    the API key's account
     * @param maxTokens    the request's max_tokens, or the model's context when it gave none
     * @param requestChars the prompt's size in characters (an upper bound on its tokens)
     * @throws org.cocoonjvm.protocol.openai.ApiException {@code INSUFFICIENT_BALANCE} (402)
     */
    Charge reserve(String accountId, String model, long maxTokens, long requestChars);

    /** A model's prices (what clients pay, what workers earn), or null when it has none. */
    PriceSchedule schedule(String model);

    /** The nanoTON price per token of a model, for {@code /v1/models}; -1 when it has none. */
    default long pricePerToken(String model) {
        PriceSchedule schedule = schedule(model);
        return schedule == null ? -1 : schedule.pricePerToken();
    }

    /** One request's reservation; settled exactly once, whatever happens to the request. */
    interface Charge {
        /**
         * Bills the usage (zero usage releases the reservation) and returns what the client pays.
         * A second call returns the first result and bills nothing.
         */
        UsageCost settle(String workerId, Usage usage);
    }
}
