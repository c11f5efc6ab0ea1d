package org.cocoonjvm.billing.chain;

import java.math.BigInteger;
import java.util.List;
import java.util.Optional;

/**
 * One transaction of one account, as the toncenter v2 {@code getTransactions} call reports it.
 *
 * @param hash base64 transaction hash, the idempotency key for anything credited from it
 * @param lt logical time, strictly increasing per account
 * @param utime the block's unix time
 * @param feeNanoton every fee the account paid in this transaction (gas, storage, forwarding)
 * @param inMessage the message that caused it; external messages have an empty source
 * @param outMessages what it sent
 * @param phases compute and action results, when the node reports them (the local emulator does)
 */
public record ChainTransaction(
        String hash,
        long lt,
        long utime,
        BigInteger feeNanoton,
        Optional<Msg> inMessage,
        List<Msg> outMessages,
        Optional<Phases> phases) {

    /**
     * @param source friendly address, empty for an external message
     * @param valueNanoton what arrived (the sender already paid the forwarding fee)
     * @param comment the text comment (op 0 body), absent for any other body
     */
    public record Msg(
            String source, String destination, BigInteger valueNanoton, Optional<String> comment) {}

    public record Phases(
            boolean aborted, Integer computeExitCode, long gasUsed, Integer actionResultCode) {}

    /**
     * True for an internal message with coins that stayed: nothing went back to the sender, so no
     * bounce. (A wallet never answers a plain transfer; an aborted transaction with a bounceable
     * message would send one back.)
     */
    public boolean isIncomingTransfer() {
        if (inMessage.isEmpty()) return false;
        Msg in = inMessage.get();
        return !in.source().isEmpty()
                && in.valueNanoton().signum() > 0
                && outMessages.stream().noneMatch(out -> out.destination().equals(in.source()));
    }
}
