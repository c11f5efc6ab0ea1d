package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import ch.qos.logback.classic.Level;
import com.iwebpp.crypto.TweetNaclFast;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.math.BigInteger;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.cocoonjvm.billing.chain.ChainTransaction;
import org.cocoonjvm.billing.chain.ChainWallet;
import org.cocoonjvm.billing.chain.ChannelCosts;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.FeeSchedule;
import org.cocoonjvm.billing.chain.LocalChain;
import org.cocoonjvm.billing.chain.TestChain;
import org.cocoonjvm.gateway.billing.ChannelOnChain;
import org.cocoonjvm.gateway.billing.PaymentOptions;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.ton.ton4j.address.Address;

/**
 * What the on-chain channel tests share: a real gateway and a real worker on loopback, paid
 * through the official channel contract on the @ton/sandbox emulator (skipped without Node.js and
 * chain-emulator/node_modules, except under CI=true). The worker earns {@link #FEE_PER_TOKEN} a
 * token, so that a reply of some hundred tokens passes the close {@link #THRESHOLD}.
 *
 * <p>A base class rather than a helper object, so that each test reads {@code net}, {@code chain}
 * and the helpers exactly as it did in the single OnChainChannelTest these classes were split
 * from. JUnit runs the {@code @BeforeAll} once per subclass: each test class starts its own
 * emulator and stops it after its last test. The chain is a static field of this class, so the
 * subclasses must not run concurrently (nothing in this module runs test classes in parallel).
 */
abstract class OnChainChannelFixture {
    private static final Path EMULATOR = Path.of("../ton-billing/chain-emulator");
    static final long DEPOSIT = 1_000_000_000L;
    /** 0.0001 TON a token: some hundred tokens pass the threshold. */
    static final long FEE_PER_TOKEN = 100_000L;
    /** 0.01 TON, above the ~0.007 TON a close costs. */
    static final long THRESHOLD = 10_000_000L;
    static final Duration QUARANTINE = Duration.ofSeconds(60);
    static final Duration CONDITIONAL_CLOSE = Duration.ofSeconds(30);

    static LocalChain chain;
    TestNetwork net;

    @BeforeAll
    static void startChain() {
        chain = TestChain.startOrSkip(EMULATOR);
    }

    @AfterAll
    static void stopChain() {
        if (chain != null) {
            chain.close();
        }
    }

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
    }

    /** The value of one series in the gateway's {@code /metrics}. */
    double metric(String series) {
        return net.call(HttpMethod.GET, "/metrics", null, null).body().lines().filter(l -> l.startsWith(series + " "))
                .mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1))).findFirst()
                .orElseThrow(() -> new AssertionError("no " + series + " in /metrics"));
    }

    JsonArray adminWorkers() {
        return net.call(HttpMethod.GET, "/admin/workers", TestNetwork.ADMIN_KEY, null).json().getJsonArray("workers");
    }

    /**
     * The worker's line for a payout says what leaves the contract and what arrives: it said
     * "N nanoTON paid out" while N less the forwarding fee arrived (audit G, M4).
     */
    static void assertLoggedPayout(LogCapture workerLog, String prefix, Address contract, ChainWallet payout,
                                   long owed) {
        long fee = new ChannelCosts(FeeSchedule.read(chain.client())).payoutForwardFee().longValueExact();
        assertThat(workerLog.linesAt(Level.INFO)).filteredOn(l -> l.contains(prefix)).singleElement().asString()
                .contains(contract.toRaw() + ": " + owed + " nanoTON leave the contract for " + payout.address().toNonBounceable()
                        + ", " + (owed - fee) + " arrive there (the chain's forwarding fee of " + fee + " is deducted");
    }

    static long tokens(TestNetwork.Reply reply) {
        JsonObject usage = new JsonObject(reply.body()).getJsonObject("usage");
        return usage.getLong("prompt_tokens") + usage.getLong("completion_tokens");
    }

    /** A gateway paying on chain from a funded wallet, channels capped at {@code cap}; returns a payout wallet. */
    ChainWallet onChainGatewayAndPayout(long cap) {
        ChainWallet gatewayWallet = wallet(BigInteger.valueOf(5 * DEPOSIT));
        ChainWallet payout = wallet(BigInteger.valueOf(DEPOSIT / 10));
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new PaymentOptions(true, 1, 50, cap),
                new ChannelOnChain(chain.client(), gatewayWallet, QUARANTINE, CONDITIONAL_CLOSE), FEE_PER_TOKEN);
        return payout;
    }

    /** The payout's newest transaction came from {@code contract} with exactly {@code owed}, less the forwarding fee. */
    static void assertPaidOut(ChainWallet payout, Address contract, long owed) {
        ChannelCosts costs = new ChannelCosts(FeeSchedule.read(chain.client()));
        ChainTransaction paid = newest(payout.address());
        assertThat(Address.of(paid.inMessage().orElseThrow().source())).isEqualTo(contract);
        assertThat(paid.inMessage().orElseThrow().valueNanoton())
                .isEqualTo(BigInteger.valueOf(owed).subtract(costs.payoutForwardFee()));
    }

    static ChainWallet wallet(BigInteger nanoton) {
        ChainWallet w = new ChainWallet(TweetNaclFast.Signature.keyPair(), chain.client(), chain.clock());
        chain.faucet(w.address(), nanoton);
        w.deploy();
        return w;
    }

    JsonObject onlyChannel(WorkerNode worker) {
        var channels = net.workerStatus(worker).getJsonArray("channels");
        assertThat(channels).hasSize(1);
        return channels.getJsonObject(0);
    }

    JsonObject channelById(WorkerNode worker, String id) {
        return net.workerStatus(worker).getJsonArray("channels").stream().map(JsonObject.class::cast)
                .filter(c -> c.getString("channel_id").equals(id)).findFirst().orElseThrow();
    }

    static ChainTransaction newest(Address account) {
        return chain.client().transactions(account, 1, Optional.empty()).getFirst();
    }

    /**
     * Streams requests until the worker has earned at least {@code target} more, then waits until
     * its latest state pays all it earned on a channel still open on chain.
     *
     * @return what the worker is owed
     */
    long streamUntilThePaidStateHolds(WorkerNode worker, Address contract, long target) {
        long paidBefore = onlyChannel(worker).getLong("sent_nanoton");
        long earned = 0;
        while (earned < target) {
            TestNetwork.Reply reply = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                    chat("synthetic", false, "\"max_tokens\":40"));
            assertThat(reply.status()).isEqualTo(200);
            JsonObject usage = new JsonObject(reply.body()).getJsonObject("usage");
            earned += FEE_PER_TOKEN * (usage.getLong("prompt_tokens") + usage.getLong("completion_tokens"));
        }
        long owed = paidBefore + earned;
        eventually("the worker holds a state for all " + owed + " nanoTON",
                () -> onlyChannel(worker).getLong("sent_nanoton") == owed);
        assertThat(ChannelData.read(chain.client(), contract).status()).isEqualTo(ChannelStatus.OPEN);
        return owed;
    }
}
