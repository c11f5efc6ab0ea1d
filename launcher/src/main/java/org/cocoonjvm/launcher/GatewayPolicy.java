package org.cocoonjvm.launcher;

import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.gateway.ConnectionOptions;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.ShutdownOptions;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.billing.PendingJournal;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.openai.BearerKeys;
import picocli.CommandLine.Option;

/** Prices, limits, the ledger and starting balances of a gateway's keys: shared by {@code demo} and {@code gateway}. */
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
            description = "Pay workers over payment channels (signed off-chain states; on chain too with --ton-api). Default: ${DEFAULT-VALUE}.")
    boolean payments;

    @Option(names = "--payment-every-tokens", defaultValue = "32",
            description = "K: sign a new channel state every this many tokens per worker (1: every token). Default: ${DEFAULT-VALUE}.")
    int paymentEveryTokens;

    @Option(names = "--payment-every-ms", defaultValue = "200",
            description = "T: and at least this often while a worker is owed more. Default: ${DEFAULT-VALUE}.")
    long paymentEveryMs;

    @Option(names = "--channel-cap-nanoton", defaultValue = "10000000000",
            description = "The most one worker's channel pays out: on chain, what each new channel is funded with (one open"
                    + " already keeps what its contract holds). Default: ${DEFAULT-VALUE} (10 TON).")
    long channelCapNanoton;

    @Option(names = "--grant-nanoton", defaultValue = "0",
            description = "Credit each key's account this much at start: a development stand-in for on-chain deposits.")
    long grantNanoton;

    @Option(names = "--ledger", paramLabel = "JDBC_URL",
            description = "Where client balances live: jdbc:h2:file:PATH (embedded) or jdbc:postgresql://HOST/DB?user=..&password=.. "
                    + "Default: an H2 file under the gateway's --data-dir (the demo: in memory).")
    String ledgerUrl;

    @Option(names = "--gateway-id", paramLabel = "ID", defaultValue = "default",
            description = "This gateway's name on a ledger shared by several gateways (PostgreSQL): it owns its requests' "
                    + "reservations, a lease, its payment key and channels. Stable across restarts, unique per gateway. "
                    + "Default: ${DEFAULT-VALUE}.")
    String gatewayId;

    @Option(names = "--lease-expiry-seconds", defaultValue = "900",
            description = "How long after its last heartbeat (every 5 s) other gateways on the ledger may presume this one "
                    + "dead and end its open requests at their last checkpoint; keep it above the longest request. "
                    + "Default: ${DEFAULT-VALUE}.")
    long leaseExpirySeconds;

    @Option(names = "--take-over",
            description = "Start even if another process holds this --gateway-id's lease and looks alive (renewed it within "
                    + "its expiry, on another host or with its process still running): that process is fenced, its running "
                    + "requests end at their last checkpoint and it exits with code 75. Without it such a start is refused.")
    boolean takeOver;

    @Option(names = "--deposit-address", paramLabel = "TON_ADDRESS",
            description = "The gateway's TON wallet that clients pay into, shown by GET /v1/account with each account's deposit comment.")
    String depositAddress;

    @Option(names = "--event-loops", defaultValue = "0",
            description = "Event loops serving clients, each with its own connections to the workers; 0: one per core.")
    int eventLoops;

    @Option(names = "--header-timeout-seconds", defaultValue = "10",
            description = "A client connection is closed unless each request head is whole within this, however slowly "
                    + "its bytes come: the first counted from the connection, later ones from their first byte. "
                    + "Default: ${DEFAULT-VALUE}.")
    long headerTimeoutSeconds;

    @Option(names = "--idle-timeout-seconds", defaultValue = "75",
            description = "A client connection with no request in flight for this long is closed (HTTP/2 with GOAWAY); "
                    + "a request in flight is never cut, however long it is silent. Keep it above the idle timeout of "
                    + "a load balancer in front. Default: ${DEFAULT-VALUE}.")
    long idleTimeoutSeconds;

    @Option(names = "--max-idle-connections", paramLabel = "N",
            description = "Client connections with no request in flight kept open at most; past it, the longest idle is "
                    + "closed as another goes idle (each holds a file descriptor, and costs a client nothing). "
                    + "Default: a quarter of the process's open-file limit.")
    Integer maxIdleConnections;

    @Option(names = "--request-timeout-seconds", defaultValue = "600",
            description = "A request's whole life once its body is in: past it the worker call is cancelled, what it "
                    + "produced is billed, and the client gets 504 timeout (an error event once streaming). "
                    + "Default: ${DEFAULT-VALUE}.")
    long requestTimeoutSeconds;

    @Option(names = "--body-timeout-seconds", defaultValue = "30",
            description = "A request's body (a gRPC call's request message) must arrive within this of its head, "
                    + "or 408 request_timeout. Default: ${DEFAULT-VALUE}.")
    long bodyTimeoutSeconds;

    @Option(names = "--stall-timeout-seconds", defaultValue = "60",
            description = "A client that reads nothing for this long while the gateway holds text for it is dropped "
                    + "as gone (client_stalled in the access log): the worker stops, what it produced is billed. "
                    + "Default: ${DEFAULT-VALUE}.")
    long stallTimeoutSeconds;

    @Option(names = "--drain-seconds", defaultValue = "0",
            description = "On SIGTERM, go on serving this long with GET /ready at 503 before the port closes, so that load "
                    + "balancers polling it move traffic away first (more than their check interval times their unhealthy "
                    + "threshold); running streams then get --shutdown-grace-seconds to finish. Default: ${DEFAULT-VALUE}.")
    long drainSeconds;

    @Option(names = "--shutdown-grace-seconds", defaultValue = "6",
            description = "After the drain, how long running streams may go on to finish; a second before it ends, those "
                    + "still running are stopped and billed for what they produced, and their clients get 503 shutting_down "
                    + "(an error event and [DONE] once streaming). Keep drain plus grace under the supervisor's kill "
                    + "timeout, less 3 s. Default: ${DEFAULT-VALUE}.")
    long graceSeconds;

    @Option(names = "--metrics-linger-seconds", defaultValue = "0",
            description = "After the grace's last request is recorded in the metrics, keep the port open this long at most "
                    + "for GET /metrics (and /health, /ready at 503; every other request is refused), until the first scrape "
                    + "reads the final counts: set it to the scrape interval, and add it to the supervisor's kill timeout. "
                    + "Default: ${DEFAULT-VALUE} (the port closes once the last request is recorded).")
    long metricsLingerSeconds;

    @Option(names = "--keepalive-seconds", defaultValue = "5",
            description = "The longest a stream stays silent: an SSE comment goes out when no token came for this long, "
                    + "before the first token and between tokens. Default: ${DEFAULT-VALUE}.")
    long keepAliveSeconds;

    @Option(names = "--status-hold-ms", defaultValue = "2000",
            description = "How long a stream's HTTP status waits for the first token: a failure within it is a real "
                    + "status (and is retried on another worker first); after it, 200 with keep-alive comments. "
                    + "Default: ${DEFAULT-VALUE}.")
    long statusHoldMs;

    @Option(names = "--flex-reserve-percent", defaultValue = "25",
            description = "The share of each worker's capacity that service_tier flex requests may not take (at least one "
                    + "slot from capacity 2, never the last), so interactive requests start at once during a bulk burst; "
                    + "flex gets 429 beyond the rest. 0: flex may fill a worker. Default: ${DEFAULT-VALUE}.")
    int flexReservePercent;

    /**
     * Each key gets an account of its own, named after the key's digest ({@link ClientKeys}).
     *
     * @param dataDir null: the operator's cordons and the known models are kept in memory
     */
    GatewayOptions options(String host, int port, List<String> apiKeys, String adminKey, boolean remoteUnattestedWorkers,
                           Path dataDir) {
        checkAmounts();
        return new GatewayOptions(host, port, clientKeys(apiKeys), BearerKeys.hash(adminKey), 1000, 4L * 1024 * 1024, relay(),
                new PaymentOptions(payments, paymentEveryTokens, paymentEveryMs, channelCapNanoton),
                eventLoops > 0 ? eventLoops : Runtime.getRuntime().availableProcessors(), connections(), shutdown(),
                remoteUnattestedWorkers, dataDir);
    }

    /** Key lines ({@link ClientKeys}) as this gateway takes them, with its limits for keys that set none. */
    Map<String, ApiKey> clientKeys(List<String> lines) {
        return ClientKeys.byDigest(lines, new KeyLimits(requestsPerMinute, tokensPerMinute, maxConcurrent));
    }

    /**
     * Where clients pay in and what each key's account is granted at start: {@code --deposit-address}
     * and {@code --grant-nanoton}, or what a command puts in their place, decided before the ledger opens.
     *
     * @param depositAddress null: none is shown to clients
     */
    record Funding(String depositAddress, long grantNanoton) {
        /**
         * Opens each key's account, if new, and credits the start grant once per account, whatever the
         * amount: a restart with another {@code --grant-nanoton}, or a second gateway on the ledger with
         * another, credits nothing more (audit N-5: the reference named the amount, and each new amount
         * credited every account again). Grants credited under that older reference count.
         */
        void openAccounts(AccountBook accounts, Collection<ApiKey> keys) {
            for (ApiKey key : keys) {
                accounts.open(key.accountId());
                if (grantNanoton > 0) {
                    accounts.creditOnce(key.accountId(), grantNanoton, grantReference(key.accountId()));
                }
            }
        }

        /**
         * What a gateway that watches no deposits (no {@code --ton-api}) tells its operator at start. No
         * top-up then lifts a 402 that this gateway's keys would get, so it says so (audit M, M-4), but
         * only while none of their accounts holds funds: a restart without the grant, already credited,
         * found balances on its ledger and still promised every request a 402 (audit Q, Q-5). Another
         * gateway on a shared ledger may watch the deposits: "this gateway" is all that is known here.
         */
        String notWatchingDeposits(AccountBook accounts, Collection<ApiKey> keys) {
            String said = (depositAddress == null
                    ? "this gateway does not watch deposits (no --ton-api) and shows its clients no deposit address"
                    : "this gateway does not watch deposits to " + depositAddress + " (no --ton-api)")
                    + ": its keys' accounts are credited by --grant-nanoton (" + grantNanoton + " nanoTON, once per account)"
                    + " and by a gateway with --ton-api on the same ledger";
            boolean funded = keys.stream().anyMatch(key -> accounts.balance(key.accountId()).availableNanoton() > 0);
            return funded ? said : said + "; none of them holds funds now, so requests are refused 402 insufficient_balance"
                    + " until one is credited";
        }
    }

    /** The start grant's credit reference: one per account. Older builds appended {@code ":" + amount}. */
    static String grantReference(String accountId) {
        return "grant-at-start:" + accountId;
    }

    /**
     * Prices, grants and limits below what they can mean, refused at start: taken, a negative
     * {@code --grant-nanoton} would credit nothing (audit L, 8), a negative price, limit or channel
     * cap, or a fee above the price, would fail later with a stack trace, and a negative
     * {@code --event-loops} would mean one per core.
     */
    private void checkAmounts() {
        Cocoon.UsageException.atLeast("--price-per-token", pricePerToken, 0);
        Cocoon.UsageException.atLeast("--worker-fee-per-token", workerFeePerToken, 0);
        if (workerFeePerToken > pricePerToken) {
            throw new Cocoon.UsageException("--worker-fee-per-token (" + workerFeePerToken + ") must not exceed "
                    + "--price-per-token (" + pricePerToken + "): the gateway would pay workers more than clients pay it");
        }
        Cocoon.UsageException.atLeast("--grant-nanoton", grantNanoton, 0);
        Cocoon.UsageException.atLeast("--channel-cap-nanoton", channelCapNanoton, 0);
        Cocoon.UsageException.atLeast("--payment-every-tokens", paymentEveryTokens, 1);
        Cocoon.UsageException.atLeast("--payment-every-ms", paymentEveryMs, 1);
        Cocoon.UsageException.atLeast("--rpm", requestsPerMinute, 0);
        Cocoon.UsageException.atLeast("--tpm", tokensPerMinute, 0);
        Cocoon.UsageException.atLeast("--max-concurrent", maxConcurrent, 0);
        Cocoon.UsageException.atLeast("--event-loops", eventLoops, 0);
    }

    /** The relay's defaults, with the timeouts and the flex reserve these flags set. */
    private RelayOptions relay() {
        checkSeconds("--request-timeout-seconds", requestTimeoutSeconds);
        checkSeconds("--body-timeout-seconds", bodyTimeoutSeconds);
        checkSeconds("--stall-timeout-seconds", stallTimeoutSeconds);
        checkSeconds("--keepalive-seconds", keepAliveSeconds);
        Cocoon.UsageException.checkRange("--status-hold-ms", statusHoldMs, 1, MOST_STATUS_HOLD_MS);
        Cocoon.UsageException.checkRange("--flex-reserve-percent", flexReservePercent, 0, 100);
        RelayOptions d = RelayOptions.DEFAULTS;
        return new RelayOptions(statusHoldMs, TimeUnit.SECONDS.toMillis(keepAliveSeconds), TimeUnit.SECONDS.toMillis(requestTimeoutSeconds), d.maxAttempts(),
                d.coalesceBytes(), TimeUnit.SECONDS.toMillis(bodyTimeoutSeconds), TimeUnit.SECONDS.toMillis(stallTimeoutSeconds),
                flexReservePercent);
    }

    private ShutdownOptions shutdown() {
        Cocoon.UsageException.checkRange("--drain-seconds", drainSeconds, 0, TimeUnit.MILLISECONDS.toSeconds(ShutdownOptions.MAX_DRAIN_MS));
        Cocoon.UsageException.checkRange("--shutdown-grace-seconds", graceSeconds, 1,
                TimeUnit.MILLISECONDS.toSeconds(ShutdownOptions.MAX_GRACE_MS));
        Cocoon.UsageException.checkRange("--metrics-linger-seconds", metricsLingerSeconds, 0,
                TimeUnit.MILLISECONDS.toSeconds(ShutdownOptions.MAX_METRICS_LINGER_MS));
        return new ShutdownOptions(TimeUnit.SECONDS.toMillis(drainSeconds), TimeUnit.SECONDS.toMillis(graceSeconds),
                TimeUnit.SECONDS.toMillis(metricsLingerSeconds));
    }

    private ConnectionOptions connections() {
        checkSeconds("--header-timeout-seconds", headerTimeoutSeconds);
        checkSeconds("--idle-timeout-seconds", idleTimeoutSeconds);
        if (maxIdleConnections != null) {
            Cocoon.UsageException.checkRange("--max-idle-connections", maxIdleConnections, 1, Integer.MAX_VALUE);
        }
        return new ConnectionOptions(TimeUnit.SECONDS.toMillis(headerTimeoutSeconds), TimeUnit.SECONDS.toMillis(idleTimeoutSeconds),
                maxIdleConnections != null ? maxIdleConnections : ConnectionOptions.defaultMostIdle());
    }

    /** A day at most: longer is no timeout at all, and would pass the record's millisecond limits. */
    private static void checkSeconds(String flag, long seconds) {
        Cocoon.UsageException.checkRange(flag, seconds, 1, MOST_TIMEOUT_SECONDS);
    }

    private static final long MOST_TIMEOUT_SECONDS = 86_400;
    /** A minute: load balancers in front close a silent connection well before. */
    private static final long MOST_STATUS_HOLD_MS = 60_000;

    /**
     * The gateway's billing on the ledger these flags name, taken while holding {@code ports}
     * ({@link GatewayLedger#open(Ports, GatewayOptions, Funding, String, PendingJournal, String)}).
     */
    GatewayLedger.Billing billing(Ports ports, GatewayOptions options, Funding funding, String defaultLedgerUrl,
                                  PendingJournal pending, String dataDirId) {
        return new GatewayLedger(ledgerUrl, gatewayId, leaseExpirySeconds, takeOver, pricePerToken, workerFeePerToken)
                .open(ports, options, funding, defaultLedgerUrl, pending, dataDirId);
    }
}
