package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.cocoonjvm.billing.chain.ChannelSettlement.Action;
import org.junit.jupiter.api.Test;

import java.math.BigInteger;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;

class ChannelSettlementTest {
    private static final Instant NOW = Instant.parse("2026-11-22T01:00:00Z");
    private static final ChannelCosts COSTS = new ChannelCosts(FeeScheduleTest.sandboxFees());
    private static final BigInteger ONE_TON = BigInteger.valueOf(1_000_000_000L);
    private static final ChannelSettlement POLICY =
            new ChannelSettlement(
                    ONE_TON, Duration.ofMinutes(10), COSTS, Clock.fixed(NOW, ZoneOffset.UTC));

    @Test
    void onStateAccepted_belowThreshold_keeps() {
        assertThat(POLICY.onStateAccepted(ONE_TON.subtract(BigInteger.ONE)))
                .isInstanceOf(Action.Keep.class);
    }

    @Test
    void onStateAccepted_atThreshold_closesCooperatively() {
        assertThat(POLICY.onStateAccepted(ONE_TON))
                .isEqualTo(new Action.CloseCooperatively(ONE_TON));
    }

    @Test
    void onShutdown_dust_keeps_andAnythingMore_closes() {
        assertThat(POLICY.onShutdown(COSTS.dustLimit())).isInstanceOf(Action.Keep.class);
        BigInteger justAbove = COSTS.dustLimit().add(BigInteger.ONE);
        assertThat(POLICY.onShutdown(justAbove))
                .isEqualTo(new Action.CloseCooperatively(justAbove));
    }

    @Test
    void onCounterpartySilent_closesUncooperativelyOnlyAfterTheLimitAndAboveDust() {
        assertThat(POLICY.onCounterpartySilent(NOW.minusSeconds(599), ONE_TON))
                .isInstanceOf(Action.Keep.class);
        assertThat(POLICY.onCounterpartySilent(NOW.minusSeconds(600), ONE_TON))
                .isEqualTo(new Action.CloseUncooperatively(Duration.ofMinutes(10)));
        assertThat(POLICY.onCounterpartySilent(NOW.minusSeconds(3600), COSTS.dustLimit()))
                .isInstanceOf(Action.Keep.class);
    }

    @Test
    void construct_dustThreshold_shouldThrow() {
        assertThatThrownBy(
                        () ->
                                new ChannelSettlement(
                                        COSTS.dustLimit(),
                                        Duration.ofMinutes(1),
                                        COSTS,
                                        Clock.systemUTC()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("dust");
        assertThatThrownBy(
                        () ->
                                new ChannelSettlement(
                                        ONE_TON, Duration.ZERO, COSTS, Clock.systemUTC()))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
