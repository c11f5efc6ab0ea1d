package org.cocoonjvm.billing.chain;

import java.math.BigInteger;

/**
 * The final split both parties sign for a cooperative close. Seqnos must exceed the committed ones
 * on chain for both parties (so the payee's must be at least 1: a one-way channel's B never signed
 * anything else) and fit the contract's uint32 storage.
 */
public record CloseTerms(BigInteger balanceA, BigInteger balanceB, long seqnoA, long seqnoB) {
    public CloseTerms {
        if (balanceA.signum() < 0 || balanceB.signum() < 0) {
            throw new IllegalArgumentException(
                    "balances can't be negative: " + balanceA + ", " + balanceB);
        }
        OnChainChannel.checkSeqno(seqnoA);
        OnChainChannel.checkSeqno(seqnoB);
    }
}
