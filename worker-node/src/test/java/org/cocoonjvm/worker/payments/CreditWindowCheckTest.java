package org.cocoonjvm.worker.payments;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.google.protobuf.ByteString;
import io.vertx.core.json.JsonObject;
import java.security.SecureRandom;
import java.util.List;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.PriceTerms;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** A credit window too small for the gateway's payment round is said when the channel's prices arrive (audit P, P-3). */
class CreditWindowCheckTest {
    private static final SecureRandom RANDOM = new SecureRandom();
    private final Logger paymentsLog = (Logger) LoggerFactory.getLogger(WorkerPayments.class);
    private final ListAppender<ILoggingEvent> events = new ListAppender<>();

    @BeforeEach
    void captureTheLog() {
        events.start();
        paymentsLog.addAppender(events);
    }

    @AfterEach
    void release() {
        paymentsLog.detachAppender(events);
    }

    @Test
    void tokensCovered_isTheWindowOverTheFeeOfAGeneratedToken_withTheCoefficient() {
        assertThat(CreditWindowCheck.tokensCovered(PriceSchedule.of("m", 2_000_000, 1_000_000), 1_000_000)).isEqualTo(1);
        assertThat(CreditWindowCheck.tokensCovered(PriceSchedule.of("m", 2, 1), 1_000_000)).isEqualTo(1_000_000);
        assertThat(CreditWindowCheck.tokensCovered(PriceSchedule.of("m", 2, 1).withCoefficients(2000, 4000), 1000))
                .isEqualTo(500);
        assertThat(CreditWindowCheck.tokensCovered(PriceSchedule.of("m", 0, 0), 0)).isEqualTo(Long.MAX_VALUE / 2);
    }

    @Test
    void aWindowHoldingAPaymentRound_isNoWarning() {
        assertThat(CreditWindowCheck.warning("c", PriceSchedule.of("m", 2, 1), 1_000_000, 32, 200)).isNull();
        assertThat(CreditWindowCheck.warning("c", PriceSchedule.of("m", 20_000, 10_000), 320_000, 32, 200)).isNull();
    }

    @Test
    void aFeeAtTheWindow_isWarnedOnce_namingWindowFeeTokensAndWhatToSet_andShownInStatus() {
        WorkerPayments payments = new WorkerPayments(WorkerPaymentOptions.IN_MEMORY);  // window 1,000,000
        PaymentChannel offer = offer(1_000_000);

        payments.open(offer);
        payments.open(offer);  // the gateway offers it again on every reconnect: said once

        List<String> warnings = events.list.stream().filter(e -> e.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage).toList();
        assertThat(warnings).hasSize(1);
        assertThat(warnings.getFirst()).contains("--credit-window-nanoton 1000000) holds 1 token(s) of model 'synthetic'",
                "fee of 1000000 nanoTON per token", "fewer than the 32 tokens after which", "(or every 200 ms)",
                "runs several times slower", "set --credit-window-nanoton to at least 64000000 (64 tokens' fees)");
        JsonObject channel = payments.status().getJsonObject(0);
        assertThat(channel.getJsonArray("credit_window_warnings").getList()).containsExactly(warnings.getFirst());
    }

    @Test
    void aFeeTheWindowHolds_isNoWarning_andNoStatusField() {
        WorkerPayments payments = new WorkerPayments(WorkerPaymentOptions.IN_MEMORY);

        payments.open(offer(1));

        assertThat(events.list).noneMatch(e -> e.getLevel() == Level.WARN);
        assertThat(payments.status().getJsonObject(0).containsKey("credit_window_warnings")).isFalse();
    }

    private static PaymentChannel offer(long fee) {
        return PaymentChannel.newBuilder().setChannelId(ByteString.copyFrom(ChannelId.random(RANDOM).toBytes()))
                .setGatewayPublicKey(ByteString.copyFrom(PaymentKeyPair.generate(RANDOM).publicKey().toBytes()))
                .setDepositCapNanoton(10_000_000_000L).setEveryTokens(32).setEveryMs(200)
                .addPrices(PriceTerms.newBuilder().setModel("synthetic").setPricePerToken(2 * fee).setWorkerFeePerToken(fee)
                        .setWorkerCoefficient(1000).setPromptMultiplier(10_000).setCachedMultiplier(10_000)
                        .setCompletionMultiplier(10_000).setReasoningMultiplier(10_000))
                .build();
    }
}
