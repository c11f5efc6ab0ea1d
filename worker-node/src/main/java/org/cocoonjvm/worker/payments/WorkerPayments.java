package org.cocoonjvm.worker.payments;

import com.google.protobuf.ByteString;
import io.vertx.core.json.JsonArray;
import java.math.BigInteger;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.ChannelData;
import org.cocoonjvm.billing.chain.ChannelStatus;
import org.cocoonjvm.billing.chain.QuarantinedState;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherException;
import org.cocoonjvm.billing.pricing.Multipliers;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.ChannelAccepted;
import org.cocoonjvm.protocol.grpc.ChannelClosingOnChain;
import org.cocoonjvm.protocol.grpc.CloseRequest;
import org.cocoonjvm.protocol.grpc.CloseSigned;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.PriceTerms;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.GenerationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * The worker's side of its payment channels: its key, the channels gateways opened to it, each
 * channel's latest verified state (stored durably before it counts), and the credit window that
 * pauses a channel's sequences while the gateway owes more than it allows.
 */
public final class WorkerPayments implements CreditGate {
    private static final Logger log = LoggerFactory.getLogger(WorkerPayments.class);
    private final WorkerPaymentOptions options;
    private final ChannelStore store;
    private final LifetimeTokens tokens;
    private final PaymentKeyPair key;
    private final Map<ChannelId, ChannelAccount> channels = new ConcurrentHashMap<>();
    private final List<Runnable> onPayment = new CopyOnWriteArrayList<>();
    /** The credit-window warnings said already: model, fee, coefficient, multiplier and payment round. */
    private final Set<String> windowWarned = ConcurrentHashMap.newKeySet();
    private final Unbilled unbilled = new Unbilled();
    /** Channels whose stale close this worker could not answer (no wallet, or too little in it): said once each. */
    private final Set<ChannelId> unansweredSaid = ConcurrentHashMap.newKeySet();
    /** Channels closing on chain whose answer is done with (given, not needed, or not possible): see {@link #leaves}. */
    private final Set<ChannelId> answerSettled = ConcurrentHashMap.newKeySet();
    /** What each uncooperative close under way pays this worker, as last read: its record once finished. */
    private final Map<ChannelId, Long> quarantinedPays = new ConcurrentHashMap<>();
    /** Done unless a gateway session is opening its channel: see {@link #channelOpening}. */
    private volatile CompletableFuture<Void> opening = CompletableFuture.completedFuture(null);

    /** Null: channels are taken on the gateway's word, off chain only. */
    private final OnChainSettlement chain;

    public WorkerPayments(WorkerPaymentOptions options) {
        this(options, null);
    }

    /**
     * @param chain checks each offered channel's contract before any credit is given, and closes
     *              it; null takes off-chain channels on the gateway's word (development and the demo)
     */
    public WorkerPayments(WorkerPaymentOptions options, OnChainSettlement chain) {
        if (chain != null) {
            payout(options);
        }
        this.chain = chain;
        this.options = options;
        this.store = new ChannelStore(options.stateDir());
        this.key = store.key(new SecureRandom());
        this.tokens = new LifetimeTokens(options.stateDir());
        // Reloaded states show in /status at once; prices arrive when the gateway registers the worker.
        for (ChannelStore.Stored stored : store.loadAll()) {
            channels.put(stored.terms().channelId(), new ChannelAccount(stored, store, options.creditWindowNanoton()));
        }
    }

    public PaymentPublicKey publicKey() {
        return key.publicKey();
    }

    /** Whether channels are checked and settled on chain. */
    public boolean onChain() {
        return chain != null;
    }

    public String payoutAddress() {
        return options.payoutAddress();
    }

    /**
     * A gateway registered this worker with {@code terms}: opens the channel (or takes it up again
     * with its stored state) and returns the worker's signed initial state to send back.
     *
     * With a chain client this blocks on the chain: the contract at {@code channel_address} must be
     * OPEN, be this channel, take the gateway's and this worker's keys, pay out to this worker's
     * payout address, and the states accepted are capped by the gateway's deposit there.
     *
     * @throws IllegalArgumentException when the terms are malformed, or the channel is known under
     *                                  another gateway key
     * @throws ChainException           when the channel on chain is not what the terms say
     */
    public ChannelAccepted open(PaymentChannel terms) {
        ChannelId id = ChannelId.fromBytes(terms.getChannelId().toByteArray());
        PaymentPublicKey gatewayKey = PaymentPublicKey.of(terms.getGatewayPublicKey().toByteArray());
        ChannelTerms channelTerms = new ChannelTerms(id, gatewayKey, Math.min(terms.getDepositCapNanoton(),
                depositOnChain(id, gatewayKey, terms.getChannelAddress())));
        Map<String, PriceSchedule> prices = new HashMap<>();
        for (PriceTerms p : terms.getPricesList()) {
            prices.put(p.getModel(), new PriceSchedule(p.getModel(), p.getPricePerToken(), p.getWorkerFeePerToken(),
                    new Multipliers(Integer.toUnsignedLong(p.getPromptMultiplier()), Integer.toUnsignedLong(p.getCachedMultiplier()),
                            Integer.toUnsignedLong(p.getCompletionMultiplier()), Integer.toUnsignedLong(p.getReasoningMultiplier())),
                    p.getWorkerCoefficient(), Math.max(p.getWorkerCoefficient(), PriceSchedule.DEFAULT_MAX_COEFFICIENT)));
        }
        ChannelAccount account = channels.compute(id, (k, known) -> {
            if (known == null) {
                return new ChannelAccount(channelTerms, prices, store, options.creditWindowNanoton());
            }
            if (known.closedOnChain()) {
                throw new IllegalArgumentException("channel " + id + " was closed on chain at " + known.channelAddress()
                        + ": it pays nothing more, and this worker takes no channel under its id again");
            }
            // A reconnect or a channel reloaded at start: running sequences meter into this
            // account, so it stays; only the prices are the gateway's latest.
            if (chain == null && raisesCap(known.terms(), channelTerms)) {
                log.info("channel {}: its gateway raised its cap from {} to {} nanoTON", id,
                        known.terms().depositCapNanoton(), channelTerms.depositCapNanoton());
                known.raiseCap(channelTerms);
            } else if (!known.terms().equals(channelTerms)) {
                throw new IllegalArgumentException("channel " + id + " was opened with " + known.terms()
                        + ", now offered with " + channelTerms);
            }
            known.prices(prices);
            return known;
        });
        account.offer(chain == null ? "" : terms.getChannelAddress(), chain == null ? null : payout(options).toRaw());
        checkCreditWindow(account, prices, terms.getEveryTokens(), terms.getEveryMs());
        if (chain != null) {
            long dueAt = chain.closeDueAt(channelTerms.depositCapNanoton(), account.window());
            if (dueAt < chain.closeThreshold() && account.startCapWarning()) {
                log.warn("channel {} holds at most {} nanoTON and the credit window is {}: it is closed once it owes {}, "
                                + "not at --close-threshold-nanoton {}, so that its cap never holds this worker's sequences",
                        id, channelTerms.depositCapNanoton(), account.window(), dueAt, chain.closeThreshold());
            }
        }
        SignedSemiChannel initial = initialState(account);
        return ChannelAccepted.newBuilder().setSignedStateBoc(ByteString.copyFrom(initial.boc())).build();
    }

    /** The same channel and payer with a higher cap: what an off-chain channel may take up (see {@link ChannelAccount#raiseCap}). */
    private static boolean raisesCap(ChannelTerms known, ChannelTerms offered) {
        return known.channelId().equals(offered.channelId()) && known.payerKey().equals(offered.payerKey())
                && offered.depositCapNanoton() > known.depositCapNanoton();
    }

    /**
     * Says, once per model, fee and payment round, when the credit window holds fewer tokens than
     * the gateway pays for at a time: every sequence then waits for each payment (audit P, P-3).
     * The account keeps the warnings for /status.
     */
    private void checkCreditWindow(ChannelAccount account, Map<String, PriceSchedule> prices, int everyTokens, int everyMs) {
        List<String> warnings = new ArrayList<>();
        for (PriceSchedule schedule : prices.values()) {
            String warning = CreditWindowCheck.warning(account.terms().channelId().hex(), schedule, account.window(),
                    Integer.toUnsignedLong(everyTokens), Integer.toUnsignedLong(everyMs));
            if (warning != null) {
                warnings.add(warning);
                if (windowWarned.add(schedule.model() + "/" + schedule.workerFeePerToken() + "/"
                        + schedule.workerCoefficient() + "/" + schedule.multipliers().completion() + "/" + everyTokens)) {
                    log.warn(warning);
                }
            }
        }
        account.windowWarnings(warnings);
    }

    /** Long.MAX_VALUE without a chain client: the gateway's cap alone then bounds the channel. */
    private long depositOnChain(ChannelId id, PaymentPublicKey gatewayKey, String channelAddress) {
        return chain == null ? Long.MAX_VALUE
                : chain.deposit(id, gatewayKey, key.publicKey(), payout(options), channelAddress);
    }

    private static Address payout(WorkerPaymentOptions options) {
        try {
            return TonAddresses.parse(options.payoutAddress());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("payout address '" + options.payoutAddress()
                    + "' is not a TON address; a worker paid on chain needs one");
        }
    }

    /**
     * After a payment on {@code channel}: the request for the gateway's close signature when the
     * channel owes enough to settle on chain, once per channel; empty otherwise.
     */
    public Optional<CloseRequest> closeRequest(ChannelId channel) {
        return closeRequest(channels.get(channel), false);
    }

    /**
     * At shutdown: the requests for the gateway's close signature of every on-chain channel still
     * open that owes more than its close costs (ChannelSettlement.onShutdown). Each one left open
     * for holding less is logged: an owner told a stop closes the channel found it open, with no
     * word why (audit M, M-3). Blocking.
     */
    public List<CloseRequest> closeRequestsAtShutdown() {
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

    /**
     * After a session registered this worker on {@code current}: the close requests of the same
     * gateway's other open on-chain channels that owe enough to settle. Such a channel was replaced
     * while an earlier session closed it, and that session ended before the close was signed; it
     * gets no more payments to ask again at. One reloaded at start counts as taken up again: its
     * gateway, whose key pays {@code current}, never offers a replaced channel again, and a worker
     * restarted after a crash mid-drain left it open with its earnings in it (audit P, P-1).
     * Blocking.
     */
    public List<CloseRequest> closeRequestsBesides(ChannelId current) {
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

    private Optional<CloseRequest> closeRequest(ChannelAccount account, boolean shuttingDown) {
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

    /**
     * The session the close requests went out on ended before their CloseSigned: the gateway
     * signs a close only on the session that asked (it waits for the channel's running requests
     * first), so each such channel asks again on the next session, at its next payment.
     */
    public void sessionEnded() {
        channels.keySet().forEach(this::closeNotAsked);
        opening.complete(null);
    }

    /** A close request prepared for {@code channel} did not go out (its session ended meanwhile): it is asked again later. */
    public void closeNotAsked(ChannelId channel) {
        ChannelAccount account = channels.get(channel);
        if (account != null && account.closeUnanswered()) {
            account.stopClosing();
        }
    }

    /**
     * A session said Hello: its gateway may name the channel it offers in requests sent the moment
     * it has registered this worker, before this worker has opened it (on chain, after reading the
     * contract). Such requests wait until the returned Runnable runs instead of being refused
     * {@code payment_required}, which the gateway's clients saw as 502s (audit G).
     *
     * @return to run once the session's channel is open or refused, or it had none: waiting
     *         requests go on (the session's end does it too, see {@link #sessionEnded})
     */
    public Runnable channelOpening() {
        CompletableFuture<Void> pending = new CompletableFuture<>();
        opening = pending;
        return () -> pending.complete(null);
    }

    /** How long a request waits for the channel it names to be opened. */
    static final long OPENING_WAIT_MS = 10_000;
    private static final CompletableFuture<Void> READY = CompletableFuture.completedFuture(null);

    /**
     * When {@code request} may be submitted: at once, unless it names a channel this worker has not
     * opened (with prices) while a session is opening one; then once that is done, or after
     * {@link #OPENING_WAIT_MS}. Submitting meters it, which refuses a channel still unknown.
     *
     * @throws GenerationException as {@link #requireChannel}
     */
    public CompletableFuture<Void> ready(GenerateRequest request) {
        requireChannel(request);
        CompletableFuture<Void> pending = opening;
        if (pending.isDone() || request.getChannelId().isEmpty()) {
            return READY;
        }
        ChannelAccount account;
        try {
            account = channels.get(ChannelId.fromBytes(request.getChannelId().toByteArray()));
        } catch (IllegalArgumentException malformed) {
            return READY;  // metering refuses it
        }
        if (account != null && account.hasPrices()) {
            return READY;
        }
        return pending.copy().completeOnTimeout(null, OPENING_WAIT_MS, TimeUnit.MILLISECONDS);
    }

    /**
     * The gateway signed the close: sends it on chain (blocking). The channel is then done (it
     * stays in {@code /status} as closed); the gateway opens a new one on the next session.
     *
     * @throws IllegalArgumentException when the close does not pay the latest accepted state
     */
    public void closeSigned(CloseSigned signed) {
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
    private void paidOut(ChannelAccount account, long paidOut, String messageHash, String closed) {
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

    /**
     * The time on the clock the settlement rules measure a gateway's silence with: what
     * {@link #settleWithoutGateway}'s {@code lastHeard} must be read from.
     */
    public Instant now() {
        return chain == null ? Instant.now() : chain.now();
    }

    /**
     * While the gateway is gone (last heard at {@code lastHeard}): starts the uncooperative close
     * of each open on-chain channel worth it once the silence passes the limit; {@link #watchChain}
     * finishes it after the quarantine. Blocking; call it periodically off the event loop.
     */
    public void settleWithoutGateway(Instant lastHeard) {
        if (chain == null) {
            return;
        }
        for (ChannelAccount account : channels.values()) {
            SignedSemiChannel latest = account.latest();
            if (account.channelAddress().isEmpty() || account.closedOnChain() || account.quarantined() || latest == null
                    || !account.offered() || !account.startClosing()) {
                continue;
            }
            if (chain.startUncooperativeIfDue(account.channelAddress(), key, latest, initialState(account), lastHeard)) {
                account.settled(ChannelStore.Settlement.QUARANTINED, 0, null, "");
                log.info("gateway silent since {}: started the uncooperative close of channel {} at {} with its state "
                                + "of seqno {}, {} nanoTON; it can be finished once the quarantine is over", lastHeard,
                        account.terms().channelId(), account.channelAddress(), latest.seqno(), latest.sentNanoton());
            } else {
                account.stopClosing();
            }
        }
    }

    /** How often {@link #watchChain} should run; null off chain. */
    public Duration watchEvery() {
        return chain == null ? null : chain.watchEvery();
    }

    /**
     * Reads each on-chain channel still open here for an uncooperative close, whoever started it,
     * session or not: a gateway may start one with an older state than the latest it signed, and
     * the contract then pays that older state unless this worker answers it with the latest
     * before the quarantine ends. A channel found closing takes no new requests; one the gateway
     * started with less than this worker holds is challenged once (the contract takes one answer);
     * each is finished, paying out, once its quarantine and conditional-close time are over.
     * Blocking; call it every {@link #watchEvery} off the event loop.
     */
    public void watchChain() {
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
            paidOut(account, quarantined != null ? quarantined : account.latest() == null ? 0 : account.latest().sentNanoton(),
                    "", "the uncooperative close of channel " + account.terms().channelId() + " at "
                            + account.channelAddress() + " was finished");
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
                    || !now().isBefore(closing.startedAt().plus(data.quarantine()).minus(watchEvery().multipliedBy(2)))) {
                Optional<String> cannot = chain.challenge(account.channelAddress(), key, latest, initialState(account));
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
                paidOut(account, quarantinedPays.get(id), finished.get(), "finished the uncooperative close of channel " + id
                        + " at " + account.channelAddress());
            }
        }
    }

    /**
     * Whether channel {@code id} is closing on chain and nothing paid on it from now can count: a
     * session paid over it should end, so that the next one is paid over a new channel.
     */
    public boolean leaves(ChannelId id) {
        ChannelAccount account = channels.get(id);
        return account != null && account.quarantined() && answerSettled.contains(id);
    }

    /**
     * What its gateway is told of channel {@code id} closing on chain (see {@link #answerClose}):
     * empty unless a close runs on it.
     */
    public Optional<ChannelClosingOnChain> closingOnChain(ChannelId id) {
        ChannelAccount account = channels.get(id);
        if (account == null || !account.quarantined()) {
            return Optional.empty();
        }
        return Optional.of(ChannelClosingOnChain.newBuilder().setChannelId(ByteString.copyFrom(id.toBytes()))
                .setStartedByGatewayKey(account.closeStartedByGateway()).build());
    }

    /** This worker's signed initial state: a one-way channel's payee never signs another. */
    private SignedSemiChannel initialState(ChannelAccount account) {
        return key.sign(new SemiChannelState(account.terms().channelId(), SemiChannelBody.INITIAL));
    }

    /**
     * A payment from a gateway, parsed and not yet verified: verified, stored, then counted; paused
     * sequences resume.
     *
     * @throws VoucherException when the state breaks a rule, or names a channel this worker has not opened
     */
    public SignedSemiChannel pay(SignedSemiChannel parsed) {
        ChannelAccount account = channels.get(parsed.channelId());
        if (account == null) {
            throw new VoucherException(VoucherException.Reason.WRONG_CHANNEL, "no channel " + parsed.channelId()
                    + " is open on this worker");
        }
        if (account.closedOnChain()) {
            throw new VoucherException(VoucherException.Reason.WRONG_CHANNEL, "channel " + parsed.channelId()
                    + " is closed on chain: no state on it pays anything");
        }
        SignedSemiChannel accepted = account.accept(parsed.boc());
        onPayment.forEach(Runnable::run);
        return accepted;
    }

    /**
     * What this worker has earned over all its runs: the tokens of earlier runs as last saved plus
     * {@code thisRun}'s, and every channel it was ever paid on, the closed ones included.
     */
    public Earnings earnings(WorkerLoad thisRun) {
        return Earnings.of(tokens.total(TokenCounts.of(thisRun)),
                channels.values().stream().map(ChannelAccount::stored).toList());
    }

    /**
     * Saves the lifetime token counts with {@code thisRun}'s in the state directory, when they
     * changed since the last save. Blocking (a file replaced and synced): call it every few
     * seconds and at stop, off the event loop, not per token.
     *
     * @throws java.io.UncheckedIOException when the file cannot be written
     */
    public void saveTokens(WorkerLoad thisRun) {
        tokens.save(TokenCounts.of(thisRun));
    }

    /** What this run metered for gateways that will never be paid: see {@link Unbilled}. */
    public Unbilled unbilled() {
        return unbilled;
    }

    /** For {@code /status}: every channel's latest state and what it still owes. */
    public JsonArray status() {
        JsonArray list = new JsonArray();
        channels.values().forEach(account -> list.add(account.status()));
        return list;
    }

    /**
     * A request from a gateway that opened a channel must name it: the gRPC endpoint checks this
     * before submitting, so a payer cannot drop the id to be served for free.
     */
    private void requireChannel(GenerateRequest request) {
        if (request.getChannelId().isEmpty() && !channels.isEmpty()) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED,
                    "payment_required: this worker is paid over a payment channel, and the request names none");
        }
    }

    @Override
    public Meter meter(GenerateRequest request) {
        if (request.getChannelId().isEmpty()) {
            return Meter.FREE;  // the operator's own HTTP API, or a gateway that pays no one
        }
        ChannelId id;
        try {
            id = ChannelId.fromBytes(request.getChannelId().toByteArray());
        } catch (IllegalArgumentException e) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED, "payment_required: " + e.getMessage());
        }
        ChannelAccount account = channels.get(id);
        if (account == null || account.closeSigned() || account.closedOnChain() || account.quarantined()) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED, "payment_required: "
                    + (account == null ? "no channel " + id + " is open on this worker"
                    : "channel " + id + " is closed or closing, or its close signed: it takes no new requests"));
        }
        String model = request.getModel();
        PriceSchedule schedule = account.price(model.contains("@") ? model.substring(0, model.indexOf('@')) : model);
        if (schedule == null) {
            throw new GenerationException(GenerationException.Reason.PAYMENT_REQUIRED,
                    "payment_required: channel " + id + " carries no price for model '" + model + "'");
        }
        return new ChannelMeter(account, schedule, options.paymentTimeoutMs(), unbilled);
    }

    @Override
    public void onPayment(Runnable wake) {
        onPayment.add(wake);
    }

    @Override
    public long pauseLimitNanos() {
        return TimeUnit.MILLISECONDS.toNanos(options.paymentTimeoutMs());
    }
}
