package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.util.List;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.gateway.ConnectionOptions;
import org.cocoonjvm.gateway.GatewayOptions;
import org.cocoonjvm.gateway.ShutdownOptions;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Client keys, the client connections' and the relay's timeouts as {@code gateway} and {@code demo} read them. */
class GatewayPolicyTest {
    private static GatewayOptions options(String... args) {
        return options(List.of("sk-test"), args);
    }

    private static GatewayOptions options(List<String> keys, String... args) {
        GatewayPolicy policy = new GatewayPolicy();
        new CommandLine(policy).parseArgs(args);
        return policy.options("127.0.0.1", 0, keys, "admin-test", false, null);
    }

    private static ApiKey key(GatewayOptions options, String key) {
        return options.apiKeys().get(BearerKeys.hash(key));
    }

    @Test
    void aKeysAccount_followsTheKey_whenKeysAreRevokedOrReordered() {
        GatewayOptions both = options(List.of("sk-alice", "sk-bob"));
        GatewayOptions bobAlone = options(List.of("sk-bob"));
        GatewayOptions reordered = options(List.of("sk-bob", "sk-alice"));
        assertThat(key(bobAlone, "sk-bob")).isEqualTo(key(both, "sk-bob")).isEqualTo(key(reordered, "sk-bob"));
        assertThat(key(reordered, "sk-alice")).isEqualTo(key(both, "sk-alice"));
        assertThat(key(both, "sk-alice").accountId()).isNotEqualTo(key(both, "sk-bob").accountId());
    }

    @Test
    void aKeysNames_comeFromItsDigest_neverItsText() {
        ApiKey bob = key(options(List.of("sk-bob")), "sk-bob");
        String prefix = BearerKeys.hash("sk-bob").substring(0, 16);
        assertThat(bob.accountId()).isEqualTo("account-" + prefix);
        assertThat(bob.id()).isEqualTo("key-" + prefix);
    }

    /** A rotated key names its predecessor's account, so the balance and deposit comment follow it (audit L, 5). */
    @Test
    void aKeyLine_mayNameTheAccountItSpends_soARotatedKeyKeepsTheBalance() {
        String old = "account-" + BearerKeys.hash("sk-old").substring(0, 16);
        GatewayOptions rotating = options(List.of("sk-old", "sk-new " + old));

        assertThat(key(rotating, "sk-new").accountId()).isEqualTo(old);
        assertThat(key(rotating, "sk-old").accountId()).isEqualTo(old);
        assertThat(key(rotating, "sk-new").id()).as("its own key id").isEqualTo("key-" + BearerKeys.hash("sk-new").substring(0, 16));
        assertThatThrownBy(() -> options(List.of("sk-new account with spaces"))).hasMessageContaining("names two accounts");
        assertThatThrownBy(() -> options(List.of("sk-new acc/../x"))).hasMessageContaining("letters, digits");
        assertThatThrownBy(() -> options(List.of("sk-new a", "sk-new b"))).hasMessageContaining("given twice");
    }

    /**
     * Audit N-5: the grant's reference named its amount, so a restart (or another gateway on the
     * ledger) with another --grant-nanoton credited every account again. Once per account now,
     * counting grants credited under the older reference.
     */
    @Test
    void theStartGrant_isCreditedOncePerAccount_whateverTheAmount() {
        InMemoryAccountBook accounts = new InMemoryAccountBook(Clock.systemUTC());
        GatewayOptions keys = options(List.of("sk-alice", "sk-bob"));
        String alice = key(keys, "sk-alice").accountId();
        String bob = key(keys, "sk-bob").accountId();
        accounts.open(bob);
        accounts.credit(bob, 100_000, "grant-at-start:" + bob + ":100000");   // an older build's grant

        grant(1_000).openAccounts(accounts, keys.apiKeys().values());
        grant(1_000).openAccounts(accounts, keys.apiKeys().values());
        grant(5_000).openAccounts(accounts, keys.apiKeys().values());

        assertThat(accounts.balance(alice).balanceNanoton()).isEqualTo(1_000);
        assertThat(accounts.balance(bob).balanceNanoton()).as("granted before, under the amount's reference").isEqualTo(100_000);
    }

    /**
     * Audit Q, Q-5: a restart without the grant, already credited, promised every request a 402 while
     * the ledger held the accounts' balances; the 402 is said only while no key's account holds funds.
     */
    @Test
    void aGatewayWatchingNoDeposits_saysRequestsAreRefused_onlyWhileNoKeysAccountHoldsFunds() {
        InMemoryAccountBook accounts = new InMemoryAccountBook(Clock.systemUTC());
        GatewayOptions keys = options(List.of("sk-alice", "sk-bob"));
        GatewayPolicy.Funding restart = new GatewayPolicy.Funding("UQdeposits", 0);
        restart.openAccounts(accounts, keys.apiKeys().values());
        assertThat(restart.notWatchingDeposits(accounts, keys.apiKeys().values()))
                .startsWith("this gateway does not watch deposits to UQdeposits (no --ton-api)")
                .contains("--grant-nanoton (0 nanoTON", "a gateway with --ton-api on the same ledger")
                .endsWith("none of them holds funds now, so requests are refused 402 insufficient_balance until one is credited");

        accounts.credit(key(keys, "sk-bob").accountId(), 1_000, "an earlier start's grant");
        assertThat(restart.notWatchingDeposits(accounts, keys.apiKeys().values()))
                .startsWith("this gateway does not watch deposits to UQdeposits").doesNotContain("402");
        // Without --deposit-address such a gateway shows clients no address: nobody would credit it.
        assertThat(grant(0).notWatchingDeposits(accounts, keys.apiKeys().values()))
                .startsWith("this gateway does not watch deposits (no --ton-api) and shows its clients no deposit address: its"
                        + " keys' accounts are credited by --grant-nanoton");
    }

    private static GatewayPolicy.Funding grant(long nanoton) {
        return new GatewayPolicy.Funding(null, nanoton);
    }

    /** A backend's key may send more than a chat frontend's: a line's limits replace the gateway's for that key. */
    @Test
    void aKeyLine_maySetItsOwnLimits_overTheGatewaysDefaults() {
        GatewayOptions keys = options(List.of("sk-chat", "sk-backend acct-backend rpm=6000 max-concurrent=0", "sk-batch tpm=1000000"),
                "--rpm", "60", "--tpm", "20000", "--max-concurrent", "4");

        assertThat(key(keys, "sk-chat").limits()).isEqualTo(new KeyLimits(60, 20_000, 4));
        assertThat(key(keys, "sk-backend").limits()).isEqualTo(new KeyLimits(6000, 20_000, 0));
        assertThat(key(keys, "sk-backend").accountId()).isEqualTo("acct-backend");
        assertThat(key(keys, "sk-batch").limits()).isEqualTo(new KeyLimits(60, 1_000_000, 4));
        assertThat(key(keys, "sk-batch").accountId()).isEqualTo("account-" + BearerKeys.hash("sk-batch").substring(0, 16));

        assertThatThrownBy(() -> options(List.of("sk-x rps=5"))).isInstanceOf(Cocoon.UsageException.class)
                .hasMessageContaining("\"rps\", which is no limit");
        assertThatThrownBy(() -> options(List.of("sk-x rpm=-1"))).hasMessageContaining("rpm must be a whole number, 0 or more");
        assertThatThrownBy(() -> options(List.of("sk-x tpm=lots"))).hasMessageContaining("\"lots\"");
        assertThatThrownBy(() -> options(List.of("sk-x max-concurrent=99999999999"))).hasMessageContaining("at most");
        assertThatThrownBy(() -> options(List.of("sk-x rpm=5", "sk-x rpm=6"))).hasMessageContaining("given twice, differently");
        assertThat(key(options(List.of("sk-x rpm=5", "sk-x rpm=5")), "sk-x").limits().requestsPerMinute()).isEqualTo(5);
    }

    /** The keys file may hold digests only: whoever reads it gets no key to spend. */
    @Test
    void aKeyLine_mayGiveTheKeyByItsDigest() {
        String digest = BearerKeys.hash("sk-secret");
        GatewayOptions byDigest = options(List.of("sha256:" + digest + " rpm=10"));

        assertThat(key(byDigest, "sk-secret")).isEqualTo(key(options(List.of("sk-secret rpm=10")), "sk-secret"));
        assertThatThrownBy(() -> options(List.of("sha256:" + digest.toUpperCase(java.util.Locale.ROOT))))
                .hasMessageContaining("64 lowercase hex digits");
        assertThatThrownBy(() -> options(List.of("sha256:abc"))).hasMessageContaining("\"abc\"");
    }

    @Test
    void connectionTimeouts_defaultToTheGatewaysDefaults() {
        assertThat(options().connections()).isEqualTo(ConnectionOptions.DEFAULTS);
    }

    @Test
    void connectionTimeouts_areGivenInSeconds() {
        assertThat(options("--header-timeout-seconds", "5", "--idle-timeout-seconds", "120").connections())
                .isEqualTo(new ConnectionOptions(5_000, 120_000, ConnectionOptions.defaultMostIdle()));
    }

    @Test
    void idleConnections_areBoundedAsGiven_atLeastOne() {
        assertThat(options("--max-idle-connections", "500").connections().mostIdle()).isEqualTo(500);
        assertThatThrownBy(() -> options("--max-idle-connections", "0").connections())
                .hasMessage("--max-idle-connections must be between 1 and 2147483647, got 0");
    }

    @Test
    void relayTimeouts_defaultToTheRelaysDefaults_andAreGivenInSeconds() {
        assertThat(options().relay()).isEqualTo(RelayOptions.DEFAULTS);
        RelayOptions set = options("--request-timeout-seconds", "120", "--body-timeout-seconds", "5",
                "--stall-timeout-seconds", "20").relay();
        assertThat(set.timeoutMs()).isEqualTo(120_000);
        assertThat(set.bodyTimeoutMs()).isEqualTo(5_000);
        assertThat(set.stallTimeoutMs()).isEqualTo(20_000);
        assertThat(set.holdStatusMs()).isEqualTo(RelayOptions.DEFAULTS.holdStatusMs());
        assertThatThrownBy(() -> options("--stall-timeout-seconds", "0"))
                .hasMessage("--stall-timeout-seconds must be between 1 and 86400, got 0");
    }

    @Test
    void streamPacing_defaultsToTheRelaysDefaults_andIsSet() {
        RelayOptions set = options("--keepalive-seconds", "15", "--status-hold-ms", "500").relay();
        assertThat(set.keepAliveMs()).isEqualTo(15_000);
        assertThat(set.holdStatusMs()).isEqualTo(500);
        assertThatThrownBy(() -> options("--status-hold-ms", "0"))
                .hasMessage("--status-hold-ms must be between 1 and 60000, got 0");
        assertThatThrownBy(() -> options("--keepalive-seconds", "0"))
                .hasMessage("--keepalive-seconds must be between 1 and 86400, got 0");
    }

    @Test
    void flexReserve_defaultsToTheRelaysDefault_andIsSet() {
        assertThat(options().relay().flexReservePercent()).isEqualTo(RelayOptions.DEFAULT_FLEX_RESERVE_PERCENT);
        assertThat(options("--flex-reserve-percent", "50").relay().flexReservePercent()).isEqualTo(50);
        assertThatThrownBy(() -> options("--flex-reserve-percent", "101"))
                .isInstanceOf(Cocoon.UsageException.class)
                .hasMessage("--flex-reserve-percent must be between 0 and 100, got 101");
    }

    @Test
    void shutdown_defaultsToNoDrainAndTheDefaultGrace_andIsGivenInSeconds() {
        assertThat(options().shutdown()).isEqualTo(ShutdownOptions.DEFAULTS);
        assertThat(options("--drain-seconds", "20", "--shutdown-grace-seconds", "30").shutdown())
                .isEqualTo(new ShutdownOptions(20_000, 30_000));
        assertThatThrownBy(() -> options("--shutdown-grace-seconds", "0"))
                .isInstanceOf(Cocoon.UsageException.class)
                .hasMessage("--shutdown-grace-seconds must be between 1 and 3600, got 0");
        assertThatThrownBy(() -> options("--drain-seconds", "301"))
                .hasMessage("--drain-seconds must be between 0 and 300, got 301");
        assertThat(options("--metrics-linger-seconds", "15").shutdown()).isEqualTo(new ShutdownOptions(0, 6_000, 15_000));
        assertThat(options("--metrics-linger-seconds", "15").shutdown().totalMs()).as("the stop's bound").isEqualTo(21_000);
        assertThatThrownBy(() -> options("--metrics-linger-seconds", "301"))
                .hasMessage("--metrics-linger-seconds must be between 0 and 300, got 301");
    }

    @Test
    void aTimeoutOutOfRange_isRefused_inSeconds_namingTheFlag() {
        assertThatThrownBy(() -> options("--idle-timeout-seconds", "0"))
                .isInstanceOf(Cocoon.UsageException.class)
                .hasMessage("--idle-timeout-seconds must be between 1 and 86400, got 0");
        assertThatThrownBy(() -> options("--header-timeout-seconds", "-1"))
                .hasMessage("--header-timeout-seconds must be between 1 and 86400, got -1");
    }
}
