package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Clock;
import java.util.concurrent.CompletionException;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.openai.ApiException;
import org.junit.jupiter.api.Test;

/** What a 402 tells a client to do: top up where the gateway takes deposits, else ask its operator. */
class InsufficientBalanceTest {
    private static final String ACCOUNT = "acct-poor";

    @Test
    void aGatewayWithADepositAddress_saysTopUp() {
        assertThat(refusal("UQ-gateway-wallet")).contains("Top up (GET /v1/account says how), or set a lower max_tokens");
    }

    @Test
    void aGatewayTakingNoDeposits_saysAskItsOperator_notTopUp() {
        assertThat(refusal(null)).contains("This gateway takes no deposits: ask its operator to credit the account, or set a"
                + " lower max_tokens").doesNotContain("Top up");
    }

    private static String refusal(String depositAddress) {
        InMemoryAccountBook book = new InMemoryAccountBook(Clock.systemUTC());
        book.open(ACCOUNT);
        book.credit(ACCOUNT, 10, "grant");
        TonRequestBilling billing = new TonRequestBilling(book, Runnable::run, model -> PriceSchedule.of(model, 2, 1), depositAddress);
        Throwable failure = catchThrowable(() -> billing.reserve("chatcmpl-1", "key-1", ACCOUNT, "m", 50, 10).toCompletableFuture().join());
        assertThat(failure).isInstanceOf(CompletionException.class).cause().isInstanceOf(ApiException.class);
        return failure.getCause().getMessage();
    }
}
