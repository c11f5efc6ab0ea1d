package org.cocoonjvm.billing.pricing;

import java.math.BigInteger;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Random inputs against the invariants and against a BigInteger restatement of the formula. The
 * seed is fixed so a failure reproduces; the failing input is in the assertion message.
 */
class PricingPropertyTest {
    private static final int CASES = 200_000;
    private static final BigInteger LONG_MAX = BigInteger.valueOf(Long.MAX_VALUE);

    @Test
    void cost_realisticInputs_splitsAddUpAndMatchTheReference() {
        SplittableRandom random = new SplittableRandom(20_250_501);
        for (int i = 0; i < CASES; i++) {
            // Up to 0.001 TON a token, 5x multipliers, a 100x coefficient, a million tokens a class.
            PriceSchedule schedule = schedule(random, 1_000_000, 50_000);
            TokenCounts tokens = tokens(random, 1L << 20);

            Cost cost = Pricing.cost(schedule, tokens, random.nextInt(100_001));

            String input = schedule + " " + tokens;
            assertThat(cost.workerFee() + cost.gatewayMargin()).as(input).isEqualTo(cost.clientCost());
            assertThat(cost.promptCost() + cost.completionCost()).as(input).isEqualTo(cost.clientCost());
            assertThat(cost.gatewayMargin()).as(input).isGreaterThanOrEqualTo(0);
        }
    }

    @Test
    void cost_anyInputs_equalsTheReferenceOrThrowsExactlyWhenItExceedsALong() {
        SplittableRandom random = new SplittableRandom(7);
        int overflows = 0;
        for (int i = 0; i < CASES; i++) {
            // Magnitudes spread over the whole range, so that both outcomes are common.
            PriceSchedule schedule = schedule(random, bits(random, 63), Math.min(bits(random, 33), Multipliers.MAX));
            int coefficient = random.nextInt((int) Math.min(bits(random, 31), PriceSchedule.COEFFICIENT_LIMIT) + 1);
            TokenCounts tokens = tokens(random, bits(random, 63));
            BigInteger[] expected = reference(schedule, tokens, coefficient);   // {adjusted, client, worker}

            String input = schedule + " " + tokens + " coefficient " + coefficient;
            if (expected[0].compareTo(LONG_MAX) > 0 || expected[1].compareTo(LONG_MAX) > 0) {
                overflows++;
                assertThatThrownBy(() -> Pricing.cost(schedule, tokens, coefficient)).as(input)
                        .isInstanceOf(CostOverflowException.class);
            } else {
                Cost cost = Pricing.cost(schedule, tokens, coefficient);
                assertThat(cost.adjustedTokens()).as(input).isEqualTo(expected[0].longValueExact());
                assertThat(cost.clientCost()).as(input).isEqualTo(expected[1].longValueExact());
                assertThat(cost.workerFee()).as(input).isEqualTo(expected[2].longValueExact());
            }
        }
        assertThat(overflows).as("both branches exercised").isBetween(CASES / 100, CASES - CASES / 100);
    }

    @Test
    void reservation_coversTheCost_whenMultipliersAtMostOneAndPromptWithinTheBytes() {
        SplittableRandom random = new SplittableRandom(42);
        for (int i = 0; i < CASES; i++) {
            int max = random.nextInt(PriceSchedule.COEFFICIENT_LIMIT / 1000 + 1);
            long price = random.nextLong(1_000_000);
            PriceSchedule schedule = new PriceSchedule("m", price, random.nextLong(price + 1),
                    multipliers(random, Multipliers.ONE), random.nextInt(max + 1), max);
            long maxTokens = random.nextLong(200_000);
            long requestBytes = random.nextLong(2_000_000);
            long prompt = random.nextLong(requestBytes + 1);
            long completion = random.nextLong(maxTokens + 1);
            TokenCounts tokens = new TokenCounts(prompt, random.nextLong(prompt + 1),
                    completion, random.nextLong(completion + 1));

            long reservation = Pricing.reservation(schedule, maxTokens, requestBytes);

            assertThat(Pricing.cost(schedule, tokens, random.nextInt(max + 1)).clientCost())
                    .as(schedule + " " + tokens).isLessThanOrEqualTo(reservation);
        }
    }

    /** The formula restated with unbounded integers: {adjusted tokens, client cost, worker fee}. */
    private static BigInteger[] reference(PriceSchedule s, TokenCounts t, int coefficient) {
        Multipliers m = s.multipliers();
        BigInteger adjusted = adj(t.prompt() - t.cached(), coefficient, m.prompt())
                .add(adj(t.cached(), coefficient, m.cached()))
                .add(adj(t.completion() - t.reasoning(), coefficient, m.completion()))
                .add(adj(t.reasoning(), coefficient, m.reasoning()));
        return new BigInteger[] {adjusted, adjusted.multiply(BigInteger.valueOf(s.pricePerToken())),
                adjusted.multiply(BigInteger.valueOf(s.workerFeePerToken()))};
    }

    private static BigInteger adj(long n, long coefficient, long multiplier) {
        return BigInteger.valueOf(n).multiply(BigInteger.valueOf(coefficient))
                .multiply(BigInteger.valueOf(multiplier)).divide(BigInteger.valueOf(10_000_000));
    }

    /** A bound of 2^k for a random k in [1, maxBits], clamped to Long.MAX_VALUE. */
    private static long bits(SplittableRandom random, int maxBits) {
        int k = random.nextInt(1, maxBits + 1);
        return k >= 63 ? Long.MAX_VALUE : 1L << k;
    }

    private static PriceSchedule schedule(SplittableRandom random, long priceBound, long multiplierBound) {
        long price = random.nextLong(priceBound);
        return new PriceSchedule("m", price, random.nextLong(price + 1), multipliers(random, multiplierBound),
                PriceSchedule.COEFFICIENT_ONE, PriceSchedule.COEFFICIENT_LIMIT);
    }

    private static Multipliers multipliers(SplittableRandom random, long bound) {
        return new Multipliers(random.nextLong(bound + 1), random.nextLong(bound + 1),
                random.nextLong(bound + 1), random.nextLong(bound + 1));
    }

    private static TokenCounts tokens(SplittableRandom random, long bound) {
        long prompt = random.nextLong(bound);
        long completion = random.nextLong(bound);
        return new TokenCounts(prompt, random.nextLong(prompt + 1), completion, random.nextLong(completion + 1));
    }
}
