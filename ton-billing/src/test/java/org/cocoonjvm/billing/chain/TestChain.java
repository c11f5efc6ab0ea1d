package org.cocoonjvm.billing.chain;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.iwebpp.crypto.TweetNaclFast;

import java.math.BigInteger;
import java.nio.file.Path;

/**
 * The local chain for integration tests. Skips when Node.js or the emulator's npm packages are
 * missing, except under CI (CI=true), where .ci/run installs them and a skip would hide a broken
 * setup.
 */
public final class TestChain {
    static final Path EMULATOR = Path.of("chain-emulator");
    static final BigInteger TON = BigInteger.valueOf(1_000_000_000L);

    private TestChain() {}

    static LocalChain startOrSkip() {
        return startOrSkip(EMULATOR);
    }

    /** @param emulator the chain-emulator directory, as seen from the calling module */
    public static LocalChain startOrSkip(Path emulator) {
        if (!"true".equals(System.getenv("CI"))) {
            assumeTrue(
                    LocalChain.isAvailable(emulator),
                    "node or chain-emulator/node_modules missing: (cd ton-billing/chain-emulator &&"
                            + " npm ci)");
        }
        return LocalChain.start(emulator, false);
    }

    /** A funded, deployed wallet with fresh keys. */
    static ChainWallet wallet(LocalChain chain, BigInteger nanoton) {
        ChainWallet w =
                new ChainWallet(TweetNaclFast.Signature.keyPair(), chain.client(), chain.clock());
        chain.faucet(w.address(), nanoton);
        w.deploy();
        return w;
    }

    static BigInteger ton(String decimal) {
        return new java.math.BigDecimal(decimal)
                .multiply(new java.math.BigDecimal(TON))
                .toBigIntegerExact();
    }
}
