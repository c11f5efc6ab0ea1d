package org.cocoonjvm.worker.payments;

import com.google.protobuf.ByteString;
import java.math.BigInteger;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.QuarantinedState;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.protocol.grpc.ChannelClosingOnChain;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The uncooperative closes of on-chain channels: started by this worker once its gateway has been
 * silent too long, and watched for on chain whoever started them, to answer a close that pays less
 * than the latest state and to finish each after its quarantine. Owns what the watch learned of
 * each close under way (what it pays, whether its answer is done, whether its failure was said);
 * the accounts are {@link WorkerPayments}'s, and a finished close is recorded by
 * {@link CooperativeCloses#paidOut} as any close. Apart because it runs on its own schedule,
 * session or not ({@code GatewayLink}'s ticks). Reads the chain (called off the event loop, one
 * call at a time); the views ({@link #leaves}, {@link #closingOnChain}) are read from the link's
 * loop. Logs as WorkerPayments, whose log operators read.
 */
final class CloseWatch {
    private static final Logger log = LoggerFactory.getLogger(WorkerPayments.class);
    private final PaymentKeyPair key;
    private final Map<ChannelId, ChannelAccount> channels;
    /** Null: channels are taken on the gateway's word, off chain only, and never watched. */
    private final OnChainSettlement chain;
    private final CooperativeCloses closes;
    /** Channels whose stale close this worker could not answer (no wallet, or too little in it): said once each. */
    private final Set<ChannelId> unansweredSaid = ConcurrentHashMap.newKeySet();
    /** Channels closing on chain whose answer is done with (given, not needed, or not possible): see {@link #leaves}. */
    private final Set<ChannelId> answerSettled = ConcurrentHashMap.newKeySet();
    /** What each uncooperative close under way pays this worker, as last read: its record once finished. */
    private final Map<ChannelId, Long> quarantinedPays = new ConcurrentHashMap<>();

    /**
     * @param channels WorkerPayments' accounts, by channel
     * @param closes   records a finished close's payout
     */
    CloseWatch(OnChainSettlement chain, PaymentKeyPair key, Map<ChannelId, ChannelAccount> channels,
               CooperativeCloses closes) {
        this.chain = chain;
        this.key = key;
        this.channels = channels;
        this.closes = closes;
    }

    /** See {@link WorkerPayments#settleWithoutGateway}. */
    void settleWithoutGateway(Instant lastHeard) {
        if (chain == null) {
            return;
        }
        for (ChannelAccount account : channels.values()) {
            SignedSemiChannel latest = account.latest();
            if (account.channelAddress().isEmpty() || account.closedOnChain() || account.quarantined() || latest == null
                    || !account.offered() || !account.startClosing()) {
                continue;
            }
            if (chain.startUncooperativeIfDue(account.channelAddress(), key, latest, account.initialState(key), lastHeard)) {
                account.settled(ChannelStore.Settlement.QUARANTINED, 0, null, "");
                log.info("gateway silent since {}: started the uncooperative close of channel {} at {} with its state "
                                + "of seqno {}, {} nanoTON; it can be finished once the quarantine is over", lastHeard,
                        account.terms().channelId(), account.channelAddress(), latest.seqno(), latest.sentNanoton());
            } else {
                account.stopClosing();
            }
        }
    }

    /** See {@link WorkerPayments#watchChain}. */
    void watchChain() {
        if (chain == null) {
            return;
        }
        for (ChannelAccount account : channels.values()) {
            if (account.channelAddress().isEmpty() || account.closedOnChain()) {
                continue;
            }
            try {
                watch(account);
            } catch (ChainException e) {
                // One channel the chain does not serve now (a node's hiccup, an answer refused)
                // must not keep the others unwatched; the next watch tries it again.
                log.warn("watching channel {} at {} on chain failed; trying again in {} s: {}", account.terms().channelId(),
                        account.channelAddress(), chain.watchEvery().toSeconds(), e.getMessage());
            }
        }
    }

    private void watch(ChannelAccount account) {
        ChannelData data = chain.read(account.channelAddress());
        if (data.quarantined().isPresent()) {
            answerClose(account, data, data.quarantined().get());
        } else if (account.quarantined() && data.status() == ChannelStatus.UNINITED) {
            // Finished by the gateway, or by this worker before a restart: it paid what was
            // quarantined when last read, or (read in no run since) what this worker started it with.
            Long quarantined = quarantinedPays.get(account.terms().channelId());
            closes.paidOut(account, quarantined != null ? quarantined : account.latest() == null ? 0
                            : account.latest().sentNanoton(), "", "the uncooperative close of channel "
                            + account.terms().channelId() + " at " + account.channelAddress() + " was finished");
        }
    }

    /**
     * A close under way on {@code account}'s channel. Seen the first time, the channel is marked
     * quarantined: it takes no new request, and its running sequences pause (then fail
     * payment_overdue), since nothing they make from here can be paid. A close its gateway started
     * with less than this worker holds is answered once, with the latest state: at once when no
     * sequence runs on the channel and that state pays all it earned, else a watch later. The
     * contract takes one answer, and a sequence's step under way when the pause came still adds
     * tokens, which the gateway's rounds pay by then (a CI run caught an answer given at once
     * under a running stream, short of its last tokens). Seen within two watches of the
     * quarantine's end (a worker back from a restart, or whose chain reads failed until then), it
     * is answered at once whatever runs: waiting would miss the quarantine and lose the whole
     * difference (review AA, AA-1). The contract takes a state that sent more even under a lower
     * seqno, so the answer goes by the amount: whoever holds the payer key can sign a higher seqno
     * for less (audit Z, Z-1).
     */
    private void answerClose(ChannelAccount account, ChannelData data, QuarantinedState closing) {
        ChannelId id = account.terms().channelId();
        SignedSemiChannel latest = account.latest();
        long pays = closing.sentA().subtract(closing.sentB()).max(BigInteger.ZERO).longValueExact();
        quarantinedPays.put(id, pays);
        boolean firstSight = !account.quarantined();
        if (firstSight) {
            account.settled(ChannelStore.Settlement.QUARANTINED, 0, null, "");
            if (closing.submittedByA()) {
                log.warn("channel {} at {}: its gateway started an uncooperative close with its state of seqno {}, {} "
                                + "nanoTON (the latest it signed here: seqno {}, {} nanoTON); the channel takes no new requests, "
                                + "and its running sequences stop", id, account.channelAddress(), closing.seqnoA(),
                        closing.sentA(), latest == null ? 0 : latest.seqno(), latest == null ? 0 : latest.sentNanoton());
            } else {
                log.info("channel {} at {}: found the uncooperative close this worker started before a restart", id,
                        account.channelAddress());
            }
        }
        if (data.status() == ChannelStatus.CLOSURE_STARTED && closing.submittedByA() && !closing.challenged()) {
            long gain = latest == null ? 0 : latest.sentNanoton() - closing.sentA().longValueExact();
            if (gain <= 0 || !chain.worthChallenging(gain)) {
                // Nothing better to answer with; a shortfall too small to answer is said once.
                if (answerSettled.add(id) && gain > 0) {
                    log.warn("channel {} at {}: its gateway's close pays {} nanoTON, {} less than its latest state, which is "
                                    + "less than an answer costs: not answered", id, account.channelAddress(), closing.sentA(), gain);
                }
            } else if (!firstSight || account.running.get() == 0 && account.unpaid() <= 0
                    || !chain.now().isBefore(closing.startedAt().plus(data.quarantine()).minus(chain.watchEvery().multipliedBy(2)))) {
                Optional<String> cannot = chain.challenge(account.channelAddress(), key, latest, account.initialState(key));
                if (cannot.isEmpty()) {
                    quarantinedPays.put(id, latest.sentNanoton());
                    log.warn("channel {} at {}: answered its gateway's close, which paid {} nanoTON, with the latest state "
                                    + "it signed (seqno {}): the close pays {} nanoTON", id, account.channelAddress(),
                            closing.sentA(), latest.seqno(), latest.sentNanoton());
                } else if (unansweredSaid.add(id)) {
                    log.error("channel {} at {}: its gateway's close pays {} nanoTON, not the {} of its latest state, and {}: "
                                    + "fund it before the quarantine ends at {}, and the next watch answers", id,
                            account.channelAddress(), closing.sentA(), latest.sentNanoton(), cannot.get(),
                            closing.startedAt().plus(data.quarantine()));
                }
                answerSettled.add(id);
            }
        } else {
            answerSettled.add(id);  // this worker's own close, answered already, or past the quarantine
        }
        // Only B answers, and only a close A started: answered, it was the gateway's.
        boolean answered = closing.challenged() || quarantinedPays.get(id) != pays;
        account.closeUnderWay(closing.submittedByA() || answered, quarantinedPays.get(id), answered,
                closing.startedAt().plus(data.quarantine()));
        if (data.status() == ChannelStatus.AWAITING_FINALIZATION) {
            Optional<String> finished = chain.finishIfDue(account.channelAddress(), key);
            if (finished.isPresent()) {
                closes.paidOut(account, quarantinedPays.get(id), finished.get(), "finished the uncooperative close of channel "
                        + id + " at " + account.channelAddress());
            }
        }
    }

    /** See {@link WorkerPayments#leaves}. */
    boolean leaves(ChannelId id) {
        ChannelAccount account = channels.get(id);
        return account != null && account.quarantined() && answerSettled.contains(id);
    }

    /** See {@link WorkerPayments#closingOnChain}. */
    Optional<ChannelClosingOnChain> closingOnChain(ChannelId id) {
        ChannelAccount account = channels.get(id);
        if (account == null || !account.quarantined()) {
            return Optional.empty();
        }
        return Optional.of(ChannelClosingOnChain.newBuilder().setChannelId(ByteString.copyFrom(id.toBytes()))
                .setStartedByGatewayKey(account.closeStartedByGateway()).build());
    }
}
