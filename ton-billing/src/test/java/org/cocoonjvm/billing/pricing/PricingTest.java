package org.cocoonjvm.billing.pricing;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PricingTest {
    /** Cocoon's test deployment: price 2, fee 1, every multiplier 1.0x, coefficient 1.0x. */
    private static final PriceSchedule TEST_DEPLOY = PriceSchedule.of("qwen", 2, 1);

    @Test
    void cost_testDeployValues_chargesTwicePerTokenAndPaysOnce() {
        Cost cost = Pricing.cost(TEST_DEPLOY, new TokenCounts(100, 20, 50, 10));

        // 80 + 20 prompt, 40 + 10 completion: 150 adjusted tokens at 1.0x.
        assertThat(cost).isEqualTo(new Cost(150, 300, 150, 150, 200, 100));
    }

    @Test
    void cost_noTokens_isZero() {
        assertThat(Pricing.cost(TEST_DEPLOY, TokenCounts.NONE)).isEqualTo(Cost.ZERO);
    }

    @Test
    void cost_workerCoefficient_scalesClientAndWorkerAlike() {
        Cost cost = Pricing.cost(TEST_DEPLOY, new TokenCounts(100, 0, 100, 0), 1500);

        assertThat(cost).isEqualTo(new Cost(300, 600, 300, 300, 300, 300));
    }

    @Test
    void cost_cachedAndReasoning_priceTheirOwnMultipliers() {
        // prompt 1.0x, cached 0.1x, completion 3.0x, reasoning 2.0x; price 2, fee 1.
        PriceSchedule schedule = TEST_DEPLOY.withMultipliers(new Multipliers(10_000, 1_000, 30_000, 20_000));

        Cost cost = Pricing.cost(schedule, new TokenCounts(1000, 400, 200, 50));

        // prompt: 600 * 1.0 + 400 * 0.1 = 640; completion: 150 * 3.0 + 50 * 2.0 = 550.
        assertThat(cost).isEqualTo(new Cost(1190, 2380, 1190, 1190, 1280, 1100));
    }

    @Test
    void cost_marginIsPriceMinusFeePerAdjustedToken() {
        PriceSchedule schedule = PriceSchedule.of("m", 1_000, 700);

        Cost cost = Pricing.cost(schedule, new TokenCounts(7, 0, 3, 0));

        assertThat(cost.clientCost()).isEqualTo(10_000);
        assertThat(cost.workerFee()).isEqualTo(7_000);
        assertThat(cost.gatewayMargin()).isEqualTo(3_000);
    }

    @Test
    void adjust_roundsDownAtTheBoundary() {
        assertThat(Pricing.adjust(1, 1000, 9_999)).isZero();            // 0.9999
        assertThat(Pricing.adjust(1, 1000, 10_000)).isEqualTo(1);       // exactly 1
        assertThat(Pricing.adjust(1, 1000, 19_999)).isEqualTo(1);       // 1.9999
        assertThat(Pricing.adjust(10, 999, 10_000)).isEqualTo(9);       // 9.99
        assertThat(Pricing.adjust(1000, 999, 10_000)).isEqualTo(999);   // exactly 999
        assertThat(Pricing.adjust(3, 1000, 3_334)).isEqualTo(1);        // 1.0002
        assertThat(Pricing.adjust(3, 1000, 3_333)).isZero();            // 0.9999
    }

    @Test
    void cost_roundsEachClassOnItsOwn_neverTheSum() {
        // Four classes at 0.5x with one token each: 0.5 each, floored to 0 each, not 2 in total.
        PriceSchedule half = TEST_DEPLOY.withMultipliers(new Multipliers(5_000, 5_000, 5_000, 5_000));

        assertThat(Pricing.cost(half, new TokenCounts(2, 1, 2, 1))).isEqualTo(Cost.ZERO);
        // Three uncached prompt tokens: 1.5 floors to 1.
        assertThat(Pricing.cost(half, new TokenCounts(3, 0, 0, 0)).adjustedTokens()).isEqualTo(1);
    }

    @Test
    void adjust_isExactWhereCocoonsDoublesLandOneLow() {
        long cocoon = (long) (6725 * (2320 * 0.001) * (10_000 * 0.0001));

        assertThat(cocoon).isEqualTo(15_601);
        assertThat(Pricing.adjust(6725, 2320, 10_000)).isEqualTo(15_602);   // 6725 * 2.32 = 15602
    }

    @Test
    void cost_coefficientZero_isFree() {
        assertThat(Pricing.cost(TEST_DEPLOY, new TokenCounts(1_000_000, 5, 1_000, 7), 0)).isEqualTo(Cost.ZERO);
    }

    @Test
    void cost_coefficientOneBillion_isAMillionTimesTheBase() {
        Cost cost = Pricing.cost(TEST_DEPLOY, new TokenCounts(5, 0, 0, 0), PriceSchedule.COEFFICIENT_LIMIT);

        assertThat(cost).isEqualTo(new Cost(5_000_000, 10_000_000, 5_000_000, 5_000_000, 10_000_000, 0));
    }

    @Test
    void cost_coefficientOutOfRange_shouldThrow() {
        TokenCounts tokens = new TokenCounts(1, 0, 1, 0);

        assertThatThrownBy(() -> Pricing.cost(TEST_DEPLOY, tokens, -1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
        assertThatThrownBy(() -> Pricing.cost(TEST_DEPLOY, tokens, 1_000_000_001))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1000000001");
    }

    @Test
    void adjust_productBeyond64Bits_isStillExact() {
        // 2^32 * 1e9 * 10000 = 4.3e22 overflows a long; the result 2^32 * 1e6 does not.
        assertThat(Pricing.adjust(1L << 32, 1_000_000_000, 10_000)).isEqualTo((1L << 32) * 1_000_000);
        // 3 * 1e9 * (2^32 - 1) = 1.29e19 overflows only at the second product.
        assertThat(Pricing.adjust(3, 1_000_000_000, Multipliers.MAX)).isEqualTo(300L * Multipliers.MAX);
        // 7 * 999_999_999 * (2^32 - 1) = 30064771034935228935, over 10^7: ...493.5228935, floored.
        assertThat(Pricing.adjust(7, 999_999_999, Multipliers.MAX)).isEqualTo(3_006_477_103_493L);
    }

    @Test
    void adjust_resultBeyond64Bits_shouldThrow() {
        assertThatThrownBy(() -> Pricing.adjust(1L << 32, 1_000_000_000, Multipliers.MAX))
                .isInstanceOf(ArithmeticException.class);
    }

    @Test
    void cost_amountOverflow_shouldThrowNotWrap() {
        PriceSchedule halfMax = PriceSchedule.of("m", Long.MAX_VALUE / 2, 1);

        assertThat(Pricing.cost(halfMax, new TokenCounts(2, 0, 0, 0)).clientCost()).isEqualTo(Long.MAX_VALUE - 1);
        assertThatThrownBy(() -> Pricing.cost(halfMax, new TokenCounts(3, 0, 0, 0)))
                .isInstanceOf(CostOverflowException.class).hasMessageContaining("does not fit");
    }

    @Test
    void cost_sumOfFittingParts_shouldThrowNotWrap() {
        PriceSchedule twoToThe62 = PriceSchedule.of("m", 1L << 62, 1);

        // The prompt's cost and the completion's fit a long on their own; their sum does not.
        assertThatThrownBy(() -> Pricing.cost(twoToThe62, new TokenCounts(1, 0, 1, 0)))
                .isInstanceOf(CostOverflowException.class);
    }

    @Test
    void cost_tokenCountOverflow_shouldThrow() {
        PriceSchedule max = TEST_DEPLOY.withMultipliers(new Multipliers(Multipliers.MAX, 0, 0, 0))
                .withCoefficients(1000, PriceSchedule.COEFFICIENT_LIMIT);

        assertThatThrownBy(() -> Pricing.cost(max, new TokenCounts(1L << 32, 0, 0, 0), PriceSchedule.COEFFICIENT_LIMIT))
                .isInstanceOf(CostOverflowException.class);
    }

    @Test
    void reservation_testDeploy_coversPromptBytesAndMaxTokensAtFourTimes() {
        // (1000 + 500) tokens * 4.0 * 2 nanoTON.
        assertThat(Pricing.reservation(TEST_DEPLOY, 1000, 500)).isEqualTo(12_000);
        assertThat(Pricing.reservation(TEST_DEPLOY, 0, 0)).isZero();
    }

    @Test
    void reservation_ignoresMultipliersAndUsesTheMaximumCoefficient() {
        PriceSchedule schedule = TEST_DEPLOY.withMultipliers(new Multipliers(1, 2, 3, 4)).withCoefficients(1000, 1500);

        assertThat(Pricing.reservation(schedule, 3, 0)).isEqualTo(8);   // floor(3 * 1.5) = 4 tokens
    }

    @Test
    void reservedPerToken_isThePriceAtTheMaximumCoefficient_exactly_boundingTheReservation() {
        PriceSchedule fractional = TEST_DEPLOY.withCoefficients(1000, 1500);  // 2 nanoTON at 1.5x

        assertThat(Pricing.reservedPerToken(TEST_DEPLOY)).isEqualByComparingTo("8").hasToString("8");
        assertThat(Pricing.reservedPerToken(fractional)).hasToString("3");
        assertThat(Pricing.reservedPerToken(fractional.withCoefficients(1000, 1250))).hasToString("2.5");
        assertThat(Pricing.reservedPerToken(new PriceSchedule("m", 40, 20, Multipliers.NEUTRAL, 1000, 2000))).hasToString("80");
        // floor(3 * 1.25) = 3 adjusted tokens at 2: under 3 * 2.5, by less than one token's price.
        assertThat(Pricing.reservation(fractional.withCoefficients(1000, 1250), 3, 0)).isEqualTo(6);
    }

    @Test
    void reservation_negativeOrOverflowing_shouldThrow() {
        assertThatThrownBy(() -> Pricing.reservation(TEST_DEPLOY, -1, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Pricing.reservation(TEST_DEPLOY, 0, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Pricing.reservation(TEST_DEPLOY, Long.MAX_VALUE, 1))
                .isInstanceOf(CostOverflowException.class);
        assertThatThrownBy(() -> Pricing.reservation(TEST_DEPLOY, Long.MAX_VALUE / 4, 0))
                .isInstanceOf(CostOverflowException.class);
    }
}
