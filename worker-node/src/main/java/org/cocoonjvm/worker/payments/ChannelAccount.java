package org.cocoonjvm.worker.payments;

import java.util.Arrays;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.billing.channel.VoucherVerifier;
import org.cocoonjvm.billing.pricing.PriceSchedule;

/**
 * One channel as its payee sees it: what the worker has earned on it (its own metering of its own
 * tokens) against the latest state the gateway signed. Earnings are added by the engine thread;
 * payments are verified and stored on a blocking thread of the gateway link, one batch at a time,
 * while a close or a settlement may be handled on another: this object's lock orders them.
 */
final class ChannelAccount {
    /** Replaced only to raise an off-chain channel's cap ({@link #raiseCap}), under this object's lock. */
    private volatile ChannelTerms terms;
    /** By model name; replaced when the gateway registers the worker again. Empty for a channel reloaded at start until then. */
    private volatile Map<String, PriceSchedule> prices;
    private final ChannelStore store;
    private final long window;
    private volatile List<String> windowWarnings = List.of();
    /** nanoTON earned since the worker started, plus what was already paid before. */
    final AtomicLong earned;
    /**
     * The part of {@link #earned} that is prompts of sequences with no token out yet. The gateway
     * pays a prompt from its first token on (a sequence that fails before it takes its prompt
     * back), so it is not overdue: counted against the credit window, prompts alone could fill it
     * and hold every sequence before its first token, which nobody would ever pay.
     */
    final AtomicLong awaitingFirstToken = new AtomicLong();
    /**
     * Sequences metered on the channel that have not ended: while none runs, nothing adds to
     * {@link #earned} (a stream's later write-off only takes from it).
     */
    final AtomicInteger running = new AtomicInteger();
    /**
     * Reloaded at start: what it earned before is known only as far as its stored state paid.
     * A worker that died owed fees (a stream cut by SIGKILL, say) is paid them by the gateway
     * once it is back, in states above that count. The gateway pays only for tokens the worker
     * metered, so each state it sends here raises {@link #earned} to at least its amount:
     * otherwise the worker would count itself overpaid by those fees for good, and give that
     * much more credit. A channel opened in this run counts exactly, and keeps showing a
     * gateway that pays more than was earned as negative unpaid.
     */
    private final boolean earnedBeforeUnknown;
    /** The latest accepted state; null before the first payment. */
    private volatile SignedSemiChannel latest;
    private volatile String lastRefusal;
    /**
     * The contract checked on chain when the channel was opened, raw form; empty for an off-chain
     * channel. Stored with the channel's state, so a restarted worker still shows it.
     */
    private volatile String channelAddress;
    /** Where the contract pays out (raw form), as checked when it was offered; null off chain. Stored with the state. */
    private volatile String payoutAddress;
    /**
     * The gateway offered the channel since this worker started: only such a channel is closed by
     * it, cooperatively or not. One reloaded at start that no gateway takes up again is left alone.
     */
    private volatile boolean offered;
    /**
     * The gateway signed its cooperative close: no state on it will ever pay more, so it takes no
     * new sequences. The gateway signs once the requests running on it are done and paid (or 15
     * minutes have passed, the gateway's close drain limit); any still running then finish unpaid
     * for what they make after the close: cutting them would cost their clients more than the few
     * tokens cost the worker. Changed with {@link #closeAsked} under this account's lock, so that
     * no reader sees both.
     */
    private volatile boolean closeSigned;
    /** A CloseRequest for it went out on the current session, and its CloseSigned has not come. */
    private volatile boolean closeAsked;
    /** Stored with the state once it changes: see {@link ChannelStore.Settlement}. */
    private volatile ChannelStore.Settlement settlement;
    /** For the payout history ({@link Earnings}); see {@link ChannelStore.Stored}. */
    private final Instant openedAt;
    private volatile Instant settledAt;
    private volatile long paidOutNanoton;
    private volatile String closeMessageHash;
    private volatile Long receivedNanoton;
    private final AtomicBoolean closing = new AtomicBoolean();
    private final AtomicBoolean capWarned = new AtomicBoolean();
    /** The uncooperative close under way as the chain watch last read it; null before one was seen. */
    private volatile CloseUnderWay closeUnderWay;

    /** A channel opened in this run. */
    ChannelAccount(ChannelTerms terms, Map<String, PriceSchedule> prices, ChannelStore store, long window) {
        this(terms, prices, store, window, new ChannelStore.Stored(terms, null, "", ChannelStore.Settlement.OPEN,
                Instant.now(), null, 0, "", null, null));
    }

    /** A channel reloaded at start; its prices come when its gateway offers it again. */
    ChannelAccount(ChannelStore.Stored stored, ChannelStore store, long window) {
        this(stored.terms(), Map.of(), store, window, stored);
    }

    private ChannelAccount(ChannelTerms terms, Map<String, PriceSchedule> prices, ChannelStore store, long window,
                           ChannelStore.Stored stored) {
        this.terms = terms;
        this.prices = Map.copyOf(prices);
        this.store = store;
        this.window = window;
        this.latest = stored.state();
        this.earnedBeforeUnknown = stored.state() != null;
        this.earned = new AtomicLong(paid());
        this.channelAddress = stored.channelAddress();
        this.settlement = stored.settlement();
        this.openedAt = stored.openedAt();
        this.settledAt = stored.settledAt();
        this.paidOutNanoton = stored.paidOutNanoton();
        this.closeMessageHash = stored.closeMessageHash();
        this.payoutAddress = stored.payoutAddress();
        this.receivedNanoton = stored.receivedNanoton();
    }

    PriceSchedule price(String model) {
        return prices.get(model);
    }

    /** False for a channel reloaded at start until its gateway offers it again: its prices come with the offer. */
    boolean hasPrices() {
        return !prices.isEmpty();
    }

    void prices(Map<String, PriceSchedule> latest) {
        prices = Map.copyOf(latest);
    }

    /** Its close (cooperative, or an uncooperative one finished) went through on chain. */
    boolean closedOnChain() {
        return settlement == ChannelStore.Settlement.CLOSED;
    }

    /** An uncooperative close was started: waiting out the quarantine to finish it. */
    boolean quarantined() {
        return settlement == ChannelStore.Settlement.QUARANTINED;
    }

    /**
     * Records durably that the channel's close on chain went as far as {@code reached}, now.
     *
     * @param paidOut     what the close paid this worker; 0 for a close not finished yet
     * @param received    what of it arrived at the payout address; null for a close not finished yet
     * @param messageHash the hash of this worker's message that got it there; empty when unknown
     */
    ChannelTerms terms() {
        return terms;
    }

    /**
     * The gateway offers this off-chain channel again with a higher cap (its operator raised
     * {@code --channel-cap-nanoton} for a channel at its cap, as the docs say to): the same channel
     * and payer, more the gateway may owe. Nothing on chain holds the old cap; refusing kept the
     * worker out for good (audit S, S-3). A lower cap, another payer or an on-chain channel is not
     * this: the caller refuses those.
     */
    synchronized void raiseCap(ChannelTerms raised) {
        if (!raised.channelId().equals(terms.channelId()) || !raised.payerKey().equals(terms.payerKey())
                || raised.depositCapNanoton() <= terms.depositCapNanoton()) {
            throw new IllegalArgumentException("not a raised cap of " + terms + ": " + raised);
        }
        terms = raised;
        store.save(stored(latest));
    }

    synchronized void settled(ChannelStore.Settlement reached, long paidOut, Long received, String messageHash) {
        // Settlement last: a reader without the lock (the history) that sees it sees the rest too.
        settledAt = Instant.now();
        paidOutNanoton = paidOut;
        receivedNanoton = received;
        closeMessageHash = messageHash;
        settlement = reached;
        if (latest != null) {
            store.save(stored(latest));
        }  // never paid: it has no file, and owes nothing a restart would need to know of (audit Z, Z-5)
    }

    /** What is stored of it, or would be once paid: its row in the payout history. */
    ChannelStore.Stored stored() {
        return stored(latest);
    }

    private ChannelStore.Stored stored(SignedSemiChannel state) {
        return new ChannelStore.Stored(terms, state, channelAddress, settlement, openedAt, settledAt, paidOutNanoton,
                closeMessageHash, payoutAddress, receivedNanoton);
    }

    long paid() {
        SignedSemiChannel s = latest;
        return s == null ? 0 : s.sentNanoton();
    }

    SignedSemiChannel latest() {
        return latest;
    }

    /** The payee's signed initial state, signed with {@code payee}: a one-way channel's payee never signs another. */
    SignedSemiChannel initialState(PaymentKeyPair payee) {
        return payee.sign(new SemiChannelState(terms.channelId(), SemiChannelBody.INITIAL));
    }

    /** The contract (raw form); empty off chain. */
    String channelAddress() {
        return channelAddress;
    }

    /** Where its contract pays out (raw form); null off chain, or when its file predates that record. */
    String payoutAddress() {
        return payoutAddress;
    }

    /** Whether a gateway offered it in this run: see {@link #offered}. */
    boolean offered() {
        return offered;
    }

    /**
     * A gateway offers it (again), over the contract at {@code address} paying out to {@code payout}
     * (raw form); empty and null off chain.
     */
    synchronized void offer(String address, String payout) {
        channelAddress = address;
        payoutAddress = payout;
        offered = true;
    }

    /** Taken up again as its gateway would offer it, over its stored contract and payout address. */
    synchronized void takeUp() {
        offered = true;
    }

    boolean closeAsked() {
        return closeAsked;
    }

    boolean closeSigned() {
        return closeSigned;
    }

    /** Its CloseRequest went out. */
    synchronized void askedToClose() {
        closeAsked = true;
    }

    /**
     * The session its CloseRequest went out on ended before the CloseSigned came.
     *
     * @return whether it was waiting for one: then it is asked again later
     */
    synchronized boolean closeUnanswered() {
        if (!closeAsked || closeSigned) {
            return false;
        }
        closeAsked = false;
        return true;
    }

    /** The gateway signed its cooperative close. */
    synchronized void signedClose() {
        closeSigned = true;
        closeAsked = false;
    }

    /**
     * What the chain watch read of the close under way: who started it, what it pays this worker
     * now, whether it was answered, and when the quarantine ends (the payout can come after it and
     * the conditional-close time).
     */
    void closeUnderWay(boolean startedByGateway, long paysNanoton, boolean answered, Instant quarantineEnds) {
        closeUnderWay = new CloseUnderWay(startedByGateway, paysNanoton, answered, quarantineEnds);
    }

    /** Whether the close under way was started with the gateway's key (false: by this worker, or none runs). */
    boolean closeStartedByGateway() {
        CloseUnderWay close = closeUnderWay;
        return close != null && close.startedByGateway();
    }

    private record CloseUnderWay(boolean startedByGateway, long paysNanoton, boolean answered, Instant quarantineEnds) {
        JsonObject json() {
            return new JsonObject().put("started_by", startedByGateway ? "gateway" : "worker")
                    .put("pays_nanoton", paysNanoton).put("answered", answered).put("quarantine_ends_at", quarantineEnds);
        }
    }

    boolean startClosing() {
        return closing.compareAndSet(false, true);
    }

    /** True the first time only: the cap below the close threshold is said once per channel, not per session. */
    boolean startCapWarning() {
        return capWarned.compareAndSet(false, true);
    }

    /** The close was not due after all. */
    void stopClosing() {
        closing.set(false);
    }

    long unpaid() {
        return earned.get() - paid();
    }

    boolean overdrawn() {
        return unpaid() - awaitingFirstToken.get() > window;
    }

    long window() {
        return window;
    }

    /** What the latest offer's prices and payment round make of the window (CreditWindowCheck); empty when it holds a round. */
    void windowWarnings(List<String> latest) {
        windowWarnings = List.copyOf(latest);
    }

    /**
     * Verifies a new state against the terms and the latest one, stores it durably, then makes it
     * the latest. Synchronized: a payment's check and store must not interleave with another's, nor with
     * a close or settlement storing the same channel's file.
     *
     * @throws VoucherException when the state breaks a rule; nothing changes then
     */
    synchronized SignedSemiChannel accept(byte[] boc) {
        if (latest != null && Arrays.equals(latest.boc(), boc)) {
            return latest;  // the gateway sends its last state again on every new session
        }
        SignedSemiChannel next;
        try {
            next = VoucherVerifier.accept(terms, latest, boc);
        } catch (VoucherException e) {
            lastRefusal = e.getMessage();
            throw e;
        }
        store.save(stored(next));
        if (earnedBeforeUnknown) {
            earned.accumulateAndGet(next.sentNanoton(), Math::max);
        }
        latest = next;
        return next;
    }

    JsonObject status() {
        SignedSemiChannel s = latest;
        JsonObject json = new JsonObject()
                .put("channel_id", terms.channelId().hex())
                .put("seqno", s == null ? 0 : s.seqno())
                .put("sent_nanoton", s == null ? 0 : s.sentNanoton())
                .put("gateway_public_key", terms.payerKey().hex())
                .put("signed_state_boc", s == null ? null : s.bocBase64())
                .put("unpaid_nanoton", unpaid())
                .put("credit_window_nanoton", window)
                .put("deposit_cap_nanoton", terms.depositCapNanoton());
        OwnerAddresses.putContract(json, "channel_address", channelAddress)
                .put("closed_on_chain", closedOnChain())
                .put("quarantined", quarantined());
        CloseUnderWay close = closeUnderWay;
        if (close != null && quarantined()) {
            json.put("close", close.json());
        }
        if (lastRefusal != null) {
            json.put("last_refused_payment", lastRefusal);
        }
        if (!windowWarnings.isEmpty()) {
            json.put("credit_window_warnings", new JsonArray(windowWarnings));
        }
        return json;
    }
}
