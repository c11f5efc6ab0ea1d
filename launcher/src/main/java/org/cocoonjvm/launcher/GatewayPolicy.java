package org.cocoonjvm.launcher;

import java.time.Clock;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.billing.RequestBilling;
import org.cocoonjvm.gateway.billing.TonRequestBilling;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.openai.BearerKeys;
import picocli.CommandLine.Option;

/** Prices, limits and starting balances of a gateway's keys: shared by {@code demo} and {@code gateway}. */
final class GatewayPolicy {
    @Option(names = "--price-per-token", defaultValue = "2",
            description = "nanoTON a client pays per (adjusted) token, every model. Default: ${DEFAULT-VALUE} (Cocoon's test value).")
    long pricePerToken;

    @Option(names = "--worker-fee-per-token", defaultValue = "1",
            description = "nanoTON a worker earns per token. Default: ${DEFAULT-VALUE}.")
    long workerFeePerToken;

    @Option(names = "--rpm", defaultValue = "0", description = "Requests per minute per key; 0: unlimited.")
    long requestsPerMinute;

    @Option(names = "--tpm", defaultValue = "0", description = "Tokens per minute per key; 0: unlimited.")
    long tokensPerMinute;

    @Option(names = "--max-concurrent", defaultValue = "0", description = "Requests in flight per key; 0: unlimited.")
    int maxConcurrent;

    @Option(names = "--payments", defaultValue = "true", negatable = true, fallbackValue = "true",
            description = "Pay workers over payment channels (off-chain states; on-chain deploy not wired yet). Default: ${DEFAULT-VALUE}.")
    boolean payments;

    @Option(names = "--payment-every-tokens", defaultValue = "32",
            description = "K: sign a new channel state every this many tokens per worker (1: every token). Default: ${DEFAULT-VALUE}.")
    int paymentEveryTokens;

    @Option(names = "--payment-every-ms", defaultValue = "200",
            description = "T: and at least this often while a worker is owed more. Default: ${DEFAULT-VALUE}.")
    long paymentEveryMs;

    @Option(names = "--channel-cap-nanoton", defaultValue = "10000000000",
            description = "The most one worker's channel pays out. Default: ${DEFAULT-VALUE} (10 TON).")
    long channelCapNanoton;

    @Option(names = "--grant-nanoton", defaultValue = "0",
            description = "Credit each key's account this much at start: a development stand-in for on-chain deposits.")
    long grantNanoton;

    /** Each key gets an account of its own, named after its position. */
    GatewayOptions options(String host, int port, List<String> apiKeys, String adminKey) {
        KeyLimits limits = new KeyLimits(requestsPerMinute, tokensPerMinute, maxConcurrent);
        Map<String, ApiKey> keys = new HashMap<>();
        for (int i = 0; i < apiKeys.size(); i++) {
            keys.put(BearerKeys.hash(apiKeys.get(i)), new ApiKey("key-" + (i + 1), "account-" + (i + 1), limits));
        }
        return new GatewayOptions(host, port, keys, BearerKeys.hash(adminKey), 1000, 4L * 1024 * 1024, RelayOptions.DEFAULTS,
                new PaymentOptions(payments, paymentEveryTokens, paymentEveryMs, channelCapNanoton));
    }

    RequestBilling billing(GatewayOptions options) {
        AccountBook accounts = new InMemoryAccountBook(Clock.systemUTC());
        for (ApiKey key : options.apiKeys().values()) {
            accounts.open(key.accountId());
            if (grantNanoton > 0) {
                accounts.credit(key.accountId(), grantNanoton, "grant-at-start:" + key.accountId());
            }
        }
        PriceSchedule.of("*", pricePerToken, workerFeePerToken);  // rejects bad numbers before anything starts
        return new TonRequestBilling(accounts, model -> PriceSchedule.of(model, pricePerToken, workerFeePerToken));
    }
}
