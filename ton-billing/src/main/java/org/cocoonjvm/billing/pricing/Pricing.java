package org.cocoonjvm.billing.pricing;

import java.math.BigDecimal;
import java.math.BigInteger;

/**
 * Cocoon's pricing formula, in exact integer arithmetic.
 *
 * <pre>
 * adj(n, coef, mult) = floor(n * coef * mult / (1000 * 10000))
 * adjustedTokens     = adj(prompt - cached, coef, m_prompt)         + adj(cached, coef, m_cached)
 *                    + adj(completion - reasoning, coef, m_completion) + adj(reasoning, coef, m_reasoning)
 * clientCost         = adjustedTokens * pricePerToken
 * workerFee          = adjustedTokens * workerFeePerToken;   gatewayMargin = clientCost - workerFee
 * reservation        = adj(maxTokens + requestBytes, maxCoefficient, 10000) * pricePerToken
 * </pre>
 *
 * <p><b>Rounding.</b> Each of the four token classes is rounded down on its own, then the
 * results are added; money is never rounded, because it is a whole number of adjusted tokens
 * times a whole price. Rounding per class is what Cocoon does (it truncates each term), and it
 * never charges for a fraction of a token. Cocoon computes {@code adj} in doubles
 * ({@code (long) (n * (coef * 0.001) * (mult * 0.0001))}), which lands one token low when the
 * exact product is a whole number that the doubles miss from below (6725 tokens at coefficient
 * 2320 and 1.0x: exactly 15602, Cocoon 15601) and loses precision past 2^53. Here the floor is
 * exact: the same usage gives the same bill on every machine.
 *
 * <p>Every step is exact: products are formed in 128 bits when they outgrow a {@code long}, and
 * an amount that does not fit in a {@code long} throws {@link CostOverflowException}.
 */
public final class Pricing {
    /** Coefficients count in 1/1000 and multipliers in 1/10000, so adj divides by both. */
    private static final long SCALE = (long) PriceSchedule.COEFFICIENT_ONE * Multipliers.ONE;
    private static final BigInteger BIG_SCALE = BigInteger.valueOf(SCALE);

    private Pricing() {
    }

    /** The cost of {@code tokens} at the schedule's default worker coefficient. */
    public static Cost cost(PriceSchedule schedule, TokenCounts tokens) {
        return cost(schedule, tokens, schedule.workerCoefficient());
    }

    /**
     * The cost of {@code tokens} served by a worker with {@code workerCoefficient} (1000 = 1.0x).
     * The coefficient is not capped at the schedule's maximum here: whether to route to such a
     * worker is the caller's decision, and if it did, the request is billed as the worker priced it.
     *
     * @throws CostOverflowException if a count or amount does not fit in a {@code long}
     */
    public static Cost cost(PriceSchedule schedule, TokenCounts tokens, int workerCoefficient) {
        checkCoefficient("workerCoefficient", workerCoefficient);
        Multipliers m = schedule.multipliers();
        long price = schedule.pricePerToken();
        try {
            long promptTokens = Math.addExact(
                    adjust(tokens.prompt() - tokens.cached(), workerCoefficient, m.prompt()),
                    adjust(tokens.cached(), workerCoefficient, m.cached()));
            long completionTokens = Math.addExact(
                    adjust(tokens.completion() - tokens.reasoning(), workerCoefficient, m.completion()),
                    adjust(tokens.reasoning(), workerCoefficient, m.reasoning()));
            long adjustedTokens = Math.addExact(promptTokens, completionTokens);
            long promptCost = Math.multiplyExact(promptTokens, price);
            long completionCost = Math.multiplyExact(completionTokens, price);
            long clientCost = Math.addExact(promptCost, completionCost);
            // fee <= price, so the fee cannot overflow once the client's cost fit, and the margin is >= 0.
            long workerFee = Math.multiplyExact(adjustedTokens, schedule.workerFeePerToken());
            return new Cost(adjustedTokens, clientCost, workerFee, clientCost - workerFee,
                    promptCost, completionCost);
        } catch (ArithmeticException overflow) {
            throw new CostOverflowException("cost of " + tokens + " at coefficient " + workerCoefficient
                    + " under " + schedule + " does not fit in a long");
        }
    }

    /**
     * The most a request can cost, reserved from the client's balance before it is forwarded.
     * Cocoon bounds the prompt by the request's size in bytes and the completion by
     * {@code max_tokens}, and prices both at the maximum coefficient and 1.0x. The bound therefore
     * holds only while every multiplier is at most 1.0x; with larger multipliers the final cost can
     * exceed it, which the account book records as an overrun rather than losing it.
     *
     * @param maxTokens    the request's completion limit ({@code max_tokens}, or the model's default)
     * @param requestBytes the size of the request body
     * @throws CostOverflowException if the amount does not fit in a {@code long}
     */
    public static long reservation(PriceSchedule schedule, long maxTokens, long requestBytes) {
        if (maxTokens < 0 || requestBytes < 0) {
            throw new IllegalArgumentException("maxTokens and requestBytes must be >= 0, got "
                    + maxTokens + " and " + requestBytes);
        }
        try {
            long tokens = adjust(Math.addExact(maxTokens, requestBytes), schedule.maxCoefficient(),
                    Multipliers.ONE);
            return Math.multiplyExact(tokens, schedule.pricePerToken());
        } catch (ArithmeticException overflow) {
            throw new CostOverflowException("reservation for " + maxTokens + " tokens and "
                    + requestBytes + " bytes under " + schedule + " does not fit in a long");
        }
    }

    /**
     * What {@link #reservation} holds per token: the price at the maximum coefficient, exactly
     * (a fraction where the coefficient is not a whole multiple). The reservation of n tokens is
     * at most n times this, and less by under one adjusted token's price (its rounding).
     */
    public static BigDecimal reservedPerToken(PriceSchedule schedule) {
        BigDecimal perToken = BigDecimal.valueOf(schedule.pricePerToken())
                .multiply(BigDecimal.valueOf(schedule.maxCoefficient(), 3)).stripTrailingZeros();
        return perToken.scale() < 0 ? perToken.setScale(0) : perToken;  // 80, not 8E+1
    }

    /**
     * {@code floor(tokens * coefficient * multiplier / 10^7)}, exactly: the only place a token count
     * is scaled. The product is formed in a {@code long} when it fits and in a {@link BigInteger}
     * otherwise (only past about 9.2e18, so never for realistic requests).
     *
     * @throws ArithmeticException if the result does not fit in a {@code long}
     */
    public static long adjust(long tokens, long coefficient, long multiplier) {
        if (tokens < 0 || coefficient < 0 || multiplier < 0) {
            throw new IllegalArgumentException("adjust takes non-negative values, got tokens " + tokens
                    + ", coefficient " + coefficient + ", multiplier " + multiplier);
        }
        long product = productOrNegative(tokens, coefficient);
        if (product >= 0) {
            product = productOrNegative(product, multiplier);
        }
        if (product >= 0) {
            return product / SCALE;   // non-negative, so integer division is the floor
        }
        return BigInteger.valueOf(tokens)
                .multiply(BigInteger.valueOf(coefficient))
                .multiply(BigInteger.valueOf(multiplier))
                .divide(BIG_SCALE)
                .longValueExact();
    }

    /** {@code a * b} for non-negative operands, or -1 when the product needs more than 63 bits. */
    private static long productOrNegative(long a, long b) {
        long low = a * b;
        return Math.multiplyHigh(a, b) == 0 && low >= 0 ? low : -1;
    }

    static void checkCoefficient(String name, int coefficient) {
        if (coefficient < 0 || coefficient > PriceSchedule.COEFFICIENT_LIMIT) {
            throw new IllegalArgumentException(name + " must be in [0, "
                    + PriceSchedule.COEFFICIENT_LIMIT + "] (1000 = 1.0x), got " + coefficient);
        }
    }
}
