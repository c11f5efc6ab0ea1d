package org.cocoonjvm.billing.chain;

import com.iwebpp.crypto.TweetNaclFast;

import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.smartcontract.SendResponse;
import org.ton.ton4j.smartcontract.types.WalletV4R2Config;
import org.ton.ton4j.smartcontract.wallet.v4.WalletV4R2;
import org.ton.ton4j.tlb.StateInit;

import java.math.BigInteger;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * A party's own wallet (ton4j's WalletV4R2, the standard wallet id): the gateway's or the worker's
 * hot wallet. Each send waits until the wallet's seqno moves, because a wallet processes one
 * external at a time and the next send must sign the next seqno.
 */
public final class ChainWallet {
    /** The subwallet id every standard V4R2 wallet on the basechain uses. */
    public static final long DEFAULT_WALLET_ID = 698983191L;

    private static final Duration VALIDITY = Duration.ofSeconds(60);
    private static final Duration CONFIRM_TIMEOUT = Duration.ofSeconds(60);

    private final WalletV4R2 wallet;
    private final ChainClient chain;
    private final Clock chainClock;

    /**
     * @param chainClock the chain's clock: messages are valid for a minute from it, and a test that
     *     moves the emulator's time must move this clock too
     */
    public ChainWallet(TweetNaclFast.Signature.KeyPair keys, ChainClient chain, Clock chainClock) {
        this.wallet =
                WalletV4R2.builder()
                        .keyPair(keys)
                        .walletId(DEFAULT_WALLET_ID)
                        .tonCenterClient(chain.tonCenter())
                        .build();
        this.chain = chain;
        this.chainClock = chainClock;
    }

    public Address address() {
        return wallet.getAddress();
    }

    /**
     * The address of the standard V4R2 wallet of {@code keys}, derived offline (no chain needed):
     * where a gateway whose wallet was never deployed still receives deposits.
     */
    public static Address addressOf(TweetNaclFast.Signature.KeyPair keys) {
        return WalletV4R2.builder().keyPair(keys).walletId(DEFAULT_WALLET_ID).build().getAddress();
    }

    public TweetNaclFast.Signature.KeyPair keys() {
        return wallet.getKeyPair();
    }

    public BigInteger balance() {
        return chain.balance(address());
    }

    /** Deploys the wallet's code; the address must already hold coins for the fee. */
    public void deploy() {
        check(wallet.deploy(), "deploy");
        awaitSeqno(0);
    }

    public void transfer(Address to, BigInteger nanoton, String comment) {
        send(config(to, nanoton).comment(comment).bounce(false).build());
    }

    /** Sends {@code body} (and {@code stateInit}, when deploying the destination) to a contract. */
    public void call(Address contract, BigInteger nanoton, Cell body, StateInit stateInit) {
        send(
                config(contract, nanoton)
                        .body(body)
                        .stateInit(stateInit)
                        .bounce(stateInit == null)
                        .build());
    }

    private WalletV4R2Config.WalletV4R2ConfigBuilder config(Address to, BigInteger nanoton) {
        return WalletV4R2Config.builder()
                .walletId(DEFAULT_WALLET_ID)
                .seqno(seqno())
                .destination(to)
                .amount(nanoton)
                .mode(3) // pay forwarding fees separately, ignore action errors (standard wallet
                // transfer)
                .validUntil(Instant.now(chainClock).plus(VALIDITY).getEpochSecond());
    }

    private void send(WalletV4R2Config config) {
        check(wallet.send(config), "transfer");
        awaitSeqno(config.getSeqno());
    }

    private long seqno() {
        ChainClient.GetMethodResult r = chain.runGetMethod(address(), "seqno");
        if (r.exitCode() != 0)
            throw new ChainException(
                    "wallet_not_ready",
                    "wallet " + address().toBounceable() + " seqno: exit " + r.exitCode());
        return r.num(0).longValueExact();
    }

    private static void check(SendResponse response, String what) {
        if (response.getCode() != 0) {
            throw new ChainException.Rejected(
                    "wallet " + what + " refused: " + response.getMessage(), null);
        }
    }

    private void awaitSeqno(long sent) {
        long deadline = System.nanoTime() + CONFIRM_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if ("active".equals(chain.state(address())) && seqno() > sent) return;
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ChainException("interrupted", "interrupted waiting for wallet seqno", e);
            }
        }
        throw new ChainException(
                "unconfirmed",
                "wallet "
                        + address().toBounceable()
                        + " seqno did not pass "
                        + sent
                        + " within "
                        + CONFIRM_TIMEOUT);
    }
}
