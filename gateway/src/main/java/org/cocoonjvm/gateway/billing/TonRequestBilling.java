package org.cocoonjvm.gateway.billing;

import java.util.function.Function;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.billing.pricing.Cost;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.Pricing;
import org.cocoonjvm.billing.pricing.TokenCounts;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.UsageCost;

/**
 * {@link RequestBilling} over ton-billing: Cocoon's pricing formula and an {@link AccountBook}.
 * A request reserves its maximum cost (Cocoon's rule: max tokens plus request size, at the
 * highest coefficient) and is charged its priced usage when it ends; the rest is released.
 */
public final class TonRequestBilling implements RequestBilling {
    private final AccountBook accounts;
    private final Function<String, PriceSchedule> prices;

    /** @param prices the schedule for each model name; never null for a model that is served */
    public TonRequestBilling(AccountBook accounts, Function<String, PriceSchedule> prices) {
        this.accounts = accounts;
        this.prices = prices;
    }

    @Override
    public PriceSchedule schedule(String model) {
        return prices.apply(model);
    }

    @Override
    public Charge reserve(String accountId, String model, long maxTokens, long requestChars) {
        PriceSchedule schedule = prices.apply(model);
        if (schedule == null) {
            throw new ApiException(ErrorKind.MODEL_NOT_FOUND, "model", "The model '" + model + "' has no price on this gateway.");
        }
        long amount = Pricing.reservation(schedule, maxTokens, requestChars);
        Reservation reservation;
        try {
            reservation = accounts.reserve(accountId, amount);
        } catch (InsufficientBalanceException e) {
            throw new ApiException(ErrorKind.INSUFFICIENT_BALANCE, null, "This request may cost up to " + amount
                    + " nanoTON; the account has " + e.availableNanoton() + " nanoTON available. Top up, or lower max_tokens.");
        } catch (UnknownAccountException e) {
            throw new ApiException(ErrorKind.INSUFFICIENT_BALANCE, null, "The account of this API key holds no funds yet.");
        }
        return new Charge() {
            private UsageCost settled;

            @Override
            public UsageCost settle(String workerId, Usage usage) {
                if (settled != null) {
                    return settled;
                }
                if (usage.getPromptTokens() == 0 && usage.getCompletionTokens() == 0) {
                    accounts.release(reservation);
                    settled = new UsageCost(0, 0, 0);
                    return settled;
                }
                Cost cost = Pricing.cost(schedule, new TokenCounts(Integer.toUnsignedLong(usage.getPromptTokens()),
                        Integer.toUnsignedLong(usage.getCachedTokens()), Integer.toUnsignedLong(usage.getCompletionTokens()),
                        Integer.toUnsignedLong(usage.getReasoningTokens())));
                accounts.settle(reservation, cost.clientCost());
                settled = new UsageCost(cost.promptCost(), cost.completionCost(), cost.clientCost());
                return settled;
            }
        };
    }
}
