package org.cocoonjvm.billing.pricing;

/**
 * The worker's fee of one request while it streams, updated per token without allocating:
 * {@code (adj(prompt, coef, m_prompt) + adj(completion, coef, m_completion)) * workerFeePerToken},
 * which is {@link Pricing#cost}'s worker fee for uncached prompt and non-reasoning completion
 * tokens. It only grows as tokens are added, because each term is a floor of a non-negative
 * product. Not thread-safe: one owner per request.
 */
public final class RunningFee {
    private final long feePerToken;
    private final int coefficient;
    private final long promptMultiplier;
    private final long completionMultiplier;
    private long promptTokens;
    private long completionTokens;
    private long promptAdjusted;
    private long completionAdjusted;

    public RunningFee(PriceSchedule schedule, int workerCoefficient) {
        Pricing.checkCoefficient("workerCoefficient", workerCoefficient);
        this.feePerToken = schedule.workerFeePerToken();
        this.coefficient = workerCoefficient;
        this.promptMultiplier = schedule.multipliers().prompt();
        this.completionMultiplier = schedule.multipliers().completion();
    }

    /** Sets the prompt's size (known once, when the sequence is admitted); returns the fee so far. */
    public long prompt(long tokens) {
        promptTokens = tokens;
        promptAdjusted = Pricing.adjust(tokens, coefficient, promptMultiplier);
        return fee();
    }

    /** Adds generated tokens; returns the fee so far. */
    public long addCompletion(long tokens) {
        completionTokens += tokens;
        completionAdjusted = Pricing.adjust(completionTokens, coefficient, completionMultiplier);
        return fee();
    }

    /** nanoTON owed to the worker for the tokens so far. */
    public long fee() {
        return Math.multiplyExact(promptAdjusted + completionAdjusted, feePerToken);
    }

    public TokenCounts tokens() {
        return new TokenCounts(promptTokens, 0, completionTokens, 0);
    }
}
