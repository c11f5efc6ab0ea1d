package org.cocoonjvm.billing.pricing;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Validation of the pricing records: bad values never get past a constructor. */
class ValuesTest {

    @Test
    void priceSchedule_of_usesCocoonDefaults() {
        PriceSchedule schedule = PriceSchedule.of("qwen", 2, 1);

        assertThat(schedule.multipliers()).isEqualTo(Multipliers.NEUTRAL);
        assertThat(schedule.workerCoefficient()).isEqualTo(1000);
        assertThat(schedule.maxCoefficient()).isEqualTo(4000);
    }

    @Test
    void priceSchedule_feeAbovePrice_shouldThrow() {
        assertThatThrownBy(() -> PriceSchedule.of("qwen", 2, 3))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("workerFeePerToken 3 exceeds pricePerToken 2 for qwen: the gateway's margin would be negative");
    }

    @Test
    void priceSchedule_feeEqualToPrice_isAllowed() {
        assertThat(PriceSchedule.of("qwen", 5, 5).workerFeePerToken()).isEqualTo(5);
    }

    @Test
    void priceSchedule_badValues_shouldThrow() {
        assertThatThrownBy(() -> PriceSchedule.of(" ", 2, 1)).hasMessageContaining("model name");
        assertThatThrownBy(() -> PriceSchedule.of("m", -1, 0)).hasMessageContaining("pricePerToken -1");
        assertThatThrownBy(() -> PriceSchedule.of("m", 1, -1)).hasMessageContaining("workerFeePerToken -1");
        PriceSchedule ok = PriceSchedule.of("m", 2, 1);
        assertThatThrownBy(() -> ok.withCoefficients(-1, 4000)).hasMessageContaining("workerCoefficient");
        assertThatThrownBy(() -> ok.withCoefficients(1000, 1_000_000_001)).hasMessageContaining("maxCoefficient");
        assertThatThrownBy(() -> ok.withCoefficients(5000, 4000))
                .hasMessageContaining("workerCoefficient 5000 exceeds maxCoefficient 4000");
        assertThatThrownBy(() -> ok.withMultipliers(null)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void multipliers_outsideUint32_shouldThrow() {
        assertThat(new Multipliers(0, Multipliers.MAX, 1, 10_000).cached()).isEqualTo(4_294_967_295L);
        assertThatThrownBy(() -> new Multipliers(-1, 0, 0, 0)).hasMessageContaining("prompt multiplier");
        assertThatThrownBy(() -> new Multipliers(0, 0, 0, Multipliers.MAX + 1)).hasMessageContaining("reasoning multiplier");
    }

    @Test
    void tokenCounts_partsLargerThanTheirWhole_shouldThrow() {
        assertThatThrownBy(() -> new TokenCounts(5, 6, 0, 0))
                .hasMessage("cached tokens 6 exceed prompt tokens 5");
        assertThatThrownBy(() -> new TokenCounts(0, 0, 5, 6))
                .hasMessage("reasoning tokens 6 exceed completion tokens 5");
        assertThatThrownBy(() -> new TokenCounts(-1, 0, 0, 0)).hasMessageContaining("prompt -1");
        assertThat(new TokenCounts(5, 5, 7, 7).cached()).isEqualTo(5);
    }

    @Test
    void cost_partsThatDoNotAddUp_shouldThrow() {
        assertThatThrownBy(() -> new Cost(1, 2, 1, 0, 1, 1)).hasMessageContaining("do not add up");
        assertThatThrownBy(() -> new Cost(1, 2, 1, 1, 2, 1)).hasMessageContaining("do not add up");
        assertThatThrownBy(() -> new Cost(1, 2, 3, -1, 1, 1)).hasMessageContaining(">= 0");
        // A sum that would wrap past Long.MAX_VALUE is caught too.
        assertThatThrownBy(() -> new Cost(1, Long.MIN_VALUE + 1, Long.MAX_VALUE, 2, 0, 0))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
