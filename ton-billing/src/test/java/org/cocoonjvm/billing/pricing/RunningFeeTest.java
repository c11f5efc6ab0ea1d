package org.cocoonjvm.billing.pricing;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RunningFeeTest {
    @Test
    void equalsPricingsWorkerFeeAfterEveryToken() {
        SplittableRandom random = new SplittableRandom(7);
        for (int trial = 0; trial < 200; trial++) {
            PriceSchedule schedule = new PriceSchedule("m", 1 + random.nextInt(1000), 0,
                    new Multipliers(random.nextInt(1, 30_000), 10_000, random.nextInt(1, 30_000), 10_000), 1000, 4000);
            schedule = new PriceSchedule("m", schedule.pricePerToken(), random.nextLong(schedule.pricePerToken() + 1),
                    schedule.multipliers(), 1000, 4000);
            int coefficient = random.nextInt(0, 5000);
            RunningFee fee = new RunningFee(schedule, coefficient);
            long prompt = random.nextInt(0, 5000);
            long last = fee.prompt(prompt);
            for (int token = 1; token <= 300; token++) {
                long now = fee.addCompletion(1);
                assertThat(now).isGreaterThanOrEqualTo(last);
                assertThat(now).isEqualTo(Pricing.cost(schedule, new TokenCounts(prompt, 0, token, 0), coefficient).workerFee());
                last = now;
            }
        }
    }
}
