package org.cocoonjvm.worker.payments;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import java.security.SecureRandom;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.junit.jupiter.api.Test;

/**
 * Audit S, S-3: an off-chain channel at its cap stays unpaid until the gateway's operator raises
 * --channel-cap-nanoton, as the docs say; the restarted gateway offers the same channel with the
 * higher cap, which the worker refused ("was opened with …") on every reconnect, for good. A raise
 * is taken; a lower cap or another payer is still refused.
 */
class OffChainCapRaiseTest {
    private static final SecureRandom RANDOM = new SecureRandom();
    private final ChannelId channel = ChannelId.random(RANDOM);
    private final PaymentKeyPair gateway = PaymentKeyPair.generate(RANDOM);

    @Test
    void aRaisedCap_isTakenUp_andShownAndKept() {
        WorkerPayments payments = new WorkerPayments(WorkerPaymentOptions.IN_MEMORY);
        payments.open(offer(gateway, 1_500));

        payments.open(offer(gateway, 5_000));

        assertThat(payments.status().getJsonObject(0).getLong("deposit_cap_nanoton")).isEqualTo(5_000);
        payments.open(offer(gateway, 5_000));   // the next reconnect offers the same terms: nothing to raise
    }

    @Test
    void aLowerCap_orAnotherPayer_isStillRefused() {
        WorkerPayments payments = new WorkerPayments(WorkerPaymentOptions.IN_MEMORY);
        payments.open(offer(gateway, 5_000));

        assertThatThrownBy(() -> payments.open(offer(gateway, 1_500))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("was opened with");
        assertThatThrownBy(() -> payments.open(offer(PaymentKeyPair.generate(RANDOM), 9_000)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(payments.status().getJsonObject(0).getLong("deposit_cap_nanoton")).isEqualTo(5_000);
    }

    private PaymentChannel offer(PaymentKeyPair payer, long cap) {
        return PaymentChannel.newBuilder().setChannelId(ByteString.copyFrom(channel.toBytes()))
                .setGatewayPublicKey(ByteString.copyFrom(payer.publicKey().toBytes()))
                .setDepositCapNanoton(cap).setEveryTokens(32).setEveryMs(200).build();
    }
}
