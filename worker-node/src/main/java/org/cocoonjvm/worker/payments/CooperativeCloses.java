package org.cocoonjvm.worker.payments;

import com.google.protobuf.ByteString;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cooperative closes of on-chain channels: when a channel's close is worth asking the gateway
 * to sign (after a payment, for the channels it replaced, at shutdown), a request that did not go
 * out, and the signed close sent on chain. Records every close's payout, the uncooperative ones'
 * too ({@link #paidOut}), so that both log and keep it alike. Holds no state of its own: the close
 * flags live on each {@link ChannelAccount}, under its lock, and the accounts are
 * {@link WorkerPayments}'s. Apart because it is one step of a channel's life, reached only with a
 * chain client. Reads the chain (called off the event loop); logs as WorkerPayments, whose log
 * operators read.
 */
final class CooperativeCloses {
    private static final Logger log = LoggerFactory.getLogger(WorkerPayments.class);
    private final WorkerPaymentOptions options;
    private final PaymentKeyPair key;
    private final Map<ChannelId, ChannelAccount> channels;
    /** Null: channels are taken on the gateway's word, off chain only, and never closed. */
    private final OnChainSettlement chain;

    /** @param channels WorkerPayments' accounts, by channel */
    CooperativeCloses(WorkerPaymentOptions options, OnChainSettlement chain, PaymentKeyPair key,
                      Map<ChannelId, ChannelAccount> channels) {
        this.options = options;
        this.chain = chain;
        this.key = key;
        this.channels = channels;
    }

    /** See {@link WorkerPayments#closeRequestsAtShutdown}. */
    List<CloseRequest> atShutdown() {
        List<CloseRequest> requests = new ArrayList<>();
        for (ChannelAccount account : channels.values()) {
            Optional<CloseRequest> request = closeRequest(account, true);
            if (request.isPresent()) {
                requests.add(request.get());
            } else if (heldAsDust(account)) {
                log.info("channel {} at {} stays open: it holds {} nanoTON, not more than the {} nanoTON its close costs, "
                                + "so a close would pay out nothing; a later run with this payment key earns on it, and closes "
                                + "it once it holds more", account.terms().channelId(), account.channelAddress(),
                        account.latest() == null ? 0 : account.latest().sentNanoton(), chain.closeCost());
            }
        }
        return requests;
    }

    /** An open on-chain channel of this run that a close is not worth: it holds no more than the close costs. */
    private boolean heldAsDust(ChannelAccount account) {
        return chain != null && account.offered() && !account.channelAddress().isEmpty() && !account.closedOnChain()
                && !account.quarantined() && !account.closeAsked() && !account.closeSigned()
                && (account.latest() == null || !chain.worthClosingAtShutdown(account.latest()));
    }

    /** See {@link WorkerPayments#closeRequestsBesides}. */
    List<CloseRequest> besides(ChannelId current) {
        ChannelAccount paidOver = channels.get(current);
        List<CloseRequest> requests = new ArrayList<>();
        for (ChannelAccount account : channels.values()) {
            if (paidOver != null && account != paidOver && account.terms().payerKey().equals(paidOver.terms().payerKey())) {
                if (!account.offered() && !account.channelAddress().isEmpty() && !account.closedOnChain()) {
                    account.takeUp();
                }
                closeRequest(account, false).ifPresent(requests::add);
            }
        }
        return requests;
    }

    /**
     * The request for the gateway's close signature of {@code account}'s channel when it owes
     * enough to settle on chain (at shutdown: more than its close costs), once per channel; empty
     * otherwise, and for an account that is null.
     */
    Optional<CloseRequest> closeRequest(ChannelAccount account, boolean shuttingDown) {
        if (chain == null || account == null || !account.offered() || account.channelAddress().isEmpty()
                || account.closedOnChain() || account.quarantined()) {
            return Optional.empty();  // a quarantined one is settled by its uncooperative close
        }
        SignedSemiChannel latest = account.latest();
        if (latest == null || !(shuttingDown ? chain.worthClosingAtShutdown(latest)
                : chain.worthClosing(latest, account.terms().depositCapNanoton(), account.window()))
                || !account.startClosing()) {
            return Optional.empty();
        }
        long seqnoB;
        try {
            seqnoB = chain.nextSeqnoB(account.channelAddress());
        } catch (RuntimeException e) {
            account.stopClosing();  // the chain did not answer: the next payment asks again
            throw e;
        }
        CloseRequest request = CloseRequest.newBuilder().setSignedStateBoc(ByteString.copyFrom(latest.boc()))
                .setSeqnoB((int) seqnoB).build();
        account.askedToClose();
        return Optional.of(request);
    }

    /** See {@link WorkerPayments#closeNotAsked}. */
    void notAsked(ChannelId channel) {
        ChannelAccount account = channels.get(channel);
        if (account != null && account.closeUnanswered()) {
            account.stopClosing();
        }
    }

    /** See {@link WorkerPayments#closeSigned}. */
    void signed(CloseSigned signed) {
        ChannelId id = ChannelId.fromBytes(signed.getChannelId().toByteArray());
        ChannelAccount account = channels.get(id);
        if (chain == null || account == null || account.latest() == null) {
            throw new IllegalArgumentException("no on-chain channel " + id + " with a state to close");
        }
        account.signedClose();
        long unpaid = account.unpaid() - (signed.getBalanceB() - account.paid());
        if (unpaid > 0) {
            log.warn("channel {} closes at {} nanoTON; {} nanoTON earned on it so far are not in the close, nor is what "
                    + "its running sequences make from here", id, signed.getBalanceB(), unpaid);
        }
        String message = chain.close(account.channelAddress(), key, account.latest(), signed);
        paidOut(account, signed.getBalanceB(), message, "closed channel " + id + " on chain at " + account.channelAddress());
    }

    /**
     * Records the close that paid out {@code paidOut}, and logs it. The chain deducts its
     * forwarding fee on the way, so the payout address gets less, and an owner comparing the two
     * would otherwise see money lost: the history keeps both.
     */
    void paidOut(ChannelAccount account, long paidOut, String messageHash, String closed) {
        if (paidOut == 0) {
            // Nothing was owed: the contract sent this worker nothing, and no fee was taken from it.
            account.settled(ChannelStore.Settlement.CLOSED, 0, 0L, messageHash);
            log.info("{}: it owed this worker nothing", closed);
            return;
        }
        long fee = chain.payoutForwardFee();
        account.settled(ChannelStore.Settlement.CLOSED, paidOut, paidOut - fee, messageHash);
        // A channel reloaded at start pays where its contract was checked to, whatever the owner changed since.
        String payout = TonAddresses.parse(account.payoutAddress() == null ? options.payoutAddress()
                : account.payoutAddress()).toNonBounceable();
        log.info("{}: {} nanoTON leave the contract for {}, {} arrive there (the chain's forwarding fee of {} is deducted "
                + "on the way)", closed, paidOut, payout, paidOut - fee, fee);
    }
}
