package org.cocoonjvm.gateway.billing;

import com.google.protobuf.ByteString;
import io.vertx.core.Future;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.cocoonjvm.billing.chain.OnChainChannel;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelJournal;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Payment;

/**
 * The gateway's payment channel to one worker. Relays meter into it from any event loop through
 * lock-free fields; everything else (the payer, the fees of finished requests, the session to
 * send states on) belongs to {@link ChannelBilling}'s context alone, or to the one payment round
 * it has in flight.
 */
public final class WorkerChannel {
    private final ChannelBilling billing;
    private final ChannelId id;
    private final ByteString idBytes;
    private final PaymentPublicKey workerKey;

    // Relays, any event loop. A meter is in inFlight until its attempt ends, then in finishing
    // until a round checkpoints its final usage. It moves there on the relay's own thread, added to
    // finishing before it leaves inFlight, and a round skips the inFlight meters it already counts
    // as finishing: a meter is counted once, or, caught between the round's two reads, in the next
    // round. Handing it to the billing context instead woke that event loop once per request.
    private final Set<RequestMeter> inFlight = ConcurrentHashMap.newKeySet();
    private final Set<RequestMeter> finishing = ConcurrentHashMap.newKeySet();
    private final AtomicLong unsignedTokens = new AtomicLong();
    private final AtomicBoolean payQueued = new AtomicBoolean();
    /**
     * Written by ChannelBilling's context, read by routing: the worker has earned the whole
     * deposit cap, so whatever it serves next on this channel is never paid.
     */
    private volatile boolean capReached;
    /**
     * Set by the worker's CloseRequest, on ChannelBilling's context, read by routing: the channel
     * takes no new requests while those running on it finish and are paid; then its close is
     * signed. Cleared when a session attaches again (a close its session did not see through).
     */
    private volatile boolean closing;

    // ChannelBilling's context only (the payer: or its round in flight). Each write is one of the
    // transitions below, so the channel's states read in one place.
    private final ChannelPayer payer;
    /**
     * Fees of finished requests whose final usage the ledger holds, plus everything owed before
     * this process started: the journal's last state, or the fees the ledger bills on this channel
     * when they are higher (a crash between a round's checkpoint and its signature). Both are
     * cumulative totals of the channel, so taking the higher pays each request's fee once.
     */
    private long durableFees;
    private Consumer<GatewayMessage> session;
    private boolean overCapLogged;
    /** The contract, once opened on chain in this process; null for an off-chain channel. */
    private OnChainChannel onChain;
    /**
     * What its contract holds for the worker's side at most (A's balance when it opened), read
     * with {@link #onChain}: the channel's cap whatever the gateway's setting is now. -1 before.
     */
    private long depositNanoton = -1;
    /**
     * The contract's address (raw form): the one the journal binds the channel to, or the one
     * opened; null for an off-chain channel. Known before {@link #onChain} for a channel read from
     * the journal at start, whose worker has not come back.
     */
    private String contractAddress;
    /** Where {@link #contractAddress}'s contract pays the worker (raw form): with it, a close can be signed after a restart. */
    private String payoutAddress;
    /** Its cooperative close is signed: no further state on it. */
    private boolean closed;
    /**
     * Who started the uncooperative close its worker reported running on chain ({@code
     * gateway_key} or {@code worker}); null while none was reported, and once its contract opens
     * again (a report the chain did not bear out). Routing skips the worker while it is set.
     */
    private volatile String closeOnChain;
    /**
     * The last state signed, journaled and sent, as this context knows it: the payer's own is the
     * round's while one is in flight, and a view must not wait for a round stuck on the ledger.
     */
    private SemiChannelBody signed;
    /** Why the last round over this channel failed; null once a round pays it. */
    private String roundError;
    /** The id the worker gave in its last session's Hello; null before one since this process started. */
    private String workerId;

    WorkerChannel(ChannelBilling billing, ChannelPayer payer, PaymentPublicKey workerKey, long feesBilledNanoton,
                  ChannelJournal.Contract contract) {
        this.billing = billing;
        this.id = payer.terms().channelId();
        this.idBytes = ByteString.copyFrom(id.toBytes());
        this.payer = payer;
        this.workerKey = workerKey;
        this.durableFees = Math.max(payer.last().sentNanoton(), feesBilledNanoton);
        this.signed = payer.last();
        this.contractAddress = contract == null ? null : contract.address();
        this.payoutAddress = contract == null ? null : contract.payoutAddress();
    }

    public ChannelId id() {
        return id;
    }

    /**
     * Its fees have reached the deposit cap: routing skips the worker until a new session brings
     * a new channel (an on-chain worker closes this one; an off-chain one waits for a higher cap).
     */
    public boolean capReached() {
        return capReached;
    }

    /**
     * Its worker asked to close it: no new request runs on it. Routing skips the worker while this
     * is its channel: until the channel that replaces it is accepted, or, without one, until the
     * worker's next session brings a new channel.
     */
    public boolean closing() {
        return closing;
    }

    /** The id as {@code GenerateRequest.channel_id} carries it. */
    public ByteString idBytes() {
        return idBytes;
    }

    public PaymentPublicKey workerKey() {
        return workerKey;
    }

    /**
     * Where the channel stands, for operators. Read on the billing context: fees move from running
     * to finished to durable there, so one read there counts each once.
     */
    public Future<View> view() {
        return billing.view(this);
    }

    /**
     * @param owedNanoton    what the worker has earned on this channel so far: every fee up to its
     *                       last state, finished requests' exact fees, running requests' fees so far;
     *                       not capped
     * @param signed         the last state signed and sent (seqno 0, 0 nanoTON before the first)
     * @param channelAddress the contract on chain (raw form); null for an off-chain channel
     * @param session        the worker's session is attached: new states reach it
     * @param roundError     why the last payment round over this channel failed; null if it did not
     * @param workerId       the id in the worker's last Hello; null before one since the gateway started
     * @param workerKey      the worker's payment key, which names it whatever id it gives
     * @param closeOnChain   who started the uncooperative close its worker reported running on it
     *                       ({@code gateway_key}, {@code worker}); null while none was
     */
    public record View(ChannelId id, long owedNanoton, SemiChannelBody signed, long capNanoton, String channelAddress,
                       boolean session, boolean closed, String roundError, String workerId, PaymentPublicKey workerKey,
                       String closeOnChain) {
        /**
         * Earned and in no signed state yet; never negative, though a finished request's exact fee
         * (cheaper cached tokens) can fall below the running fee a state already paid.
         */
        public long unpaidNanoton() {
            return Math.max(0, owedNanoton - signed.sentNanoton());
        }
    }

    /** This context only. */
    View view(long capNanoton) {
        Set<RequestMeter> finished = Set.copyOf(finishing);
        Map<RequestBilling.Charge, RequestBilling.Metered> covered = new HashMap<>();
        long owed = durableFees + finishedFees(finished, covered) + runningFees(finished, covered);
        return new View(id, owed, signed, capNanoton, contractAddress, session != null,
                closed, roundError, workerId, workerKey, closeOnChain);
    }

    /**
     * A meter for one attempt at {@code model} on this worker ({@code workerId}: its registration's),
     * billed to {@code charge}, or null when the model has no price (admission refuses such requests
     * before they get here).
     */
    public RequestMeter meter(String workerId, String model, RequestBilling.Charge charge) {
        PriceSchedule schedule = billing.schedule(model);
        if (schedule == null) {
            return null;
        }
        RequestMeter meter = new RequestMeter(this, workerId, schedule, charge);
        inFlight.add(meter);
        return meter;
    }

    void metered(long tokens) {
        if (unsignedTokens.addAndGet(tokens) >= billing.everyTokens()) {
            billing.payLater(this);
        }
    }

    /**
     * No round of its own: a finished request's tokens were metered towards K already, and the T
     * timer pays the rest. A round per finished request signed (and the worker verified) a state
     * per request: with 2-token requests, about a tenth of the benchmark process's CPU samples.
     */
    void finished(RequestMeter meter) {
        finishing.add(meter);
        inFlight.remove(meter);
    }

    /**
     * What a round would pay this channel now, adding the usage to checkpoint first to
     * {@code progress}; null when the worker is owed no more than its last state. Owed is never
     * below the last state: running fees only grow, and a finished request replaces its running fee
     * by its exact fee, which can be lower only when cached or reasoning tokens are cheaper; then
     * the last state stands until the fees catch up, so nothing is paid twice.
     */
    Due due(Map<RequestBilling.Charge, RequestBilling.Metered> progress) {
        long tokens = unsignedTokens.get();
        Set<RequestMeter> finished = Set.copyOf(finishing);
        Map<RequestBilling.Charge, RequestBilling.Metered> covered = new HashMap<>();
        long finishedFees = finishedFees(finished, covered);
        long owed = billing.capped(this, durableFees + finishedFees + runningFees(finished, covered));
        if (owed <= payer.last().sentNanoton()) {
            return null;
        }
        covered.forEach((charge, usage) -> progress.merge(charge, usage, RequestMeter::further));
        return new Due(this, owed, tokens, finished, finishedFees);
    }

    /** The exact fees of {@code finished}, with their final usage added to {@code covered}. */
    private static long finishedFees(Set<RequestMeter> finished, Map<RequestBilling.Charge, RequestBilling.Metered> covered) {
        long fees = 0;
        for (RequestMeter meter : finished) {
            fees += meter.exactFee();
            meter.checkpoint(covered);
        }
        return fees;
    }

    /** The running fees of the meters in flight and not in {@code finished}, with their usage added to {@code covered}. */
    private long runningFees(Set<RequestMeter> finished, Map<RequestBilling.Charge, RequestBilling.Metered> covered) {
        long fees = 0;
        for (RequestMeter meter : inFlight) {
            if (!finished.contains(meter)) {
                fees += meter.snapshot(covered);   // the fee first, then usage at least that far
            }
        }
        return fees;
    }

    // Transitions, ChannelBilling's context only.

    /**
     * A session attaches: it holds the channel from now (a second session for the key is refused),
     * and a close its last session did not see through is forgotten.
     */
    void attach(Consumer<GatewayMessage> session, String workerId) {
        this.session = session;
        this.closing = false;
        this.workerId = workerId;
    }

    /** {@code session} ended or failed to open the channel: it lets go, unless another holds the channel now. */
    void detach(Consumer<GatewayMessage> session) {
        if (this.session == session) {
            this.session = null;
        }
    }

    /** Its contract is OPEN on chain with {@code deposit}, paying the worker at {@code payout} (raw form). */
    void openedOnChain(OnChainChannel contract, String payout, long deposit) {
        contractDerived(contract, deposit);
        closeOnChain = null;
        contractAddress = contract.address().toRaw();
        payoutAddress = payout;
    }

    /** Its bound contract, derived again from its addresses for a close after a restart, and what it holds. */
    void contractDerived(OnChainChannel contract, long deposit) {
        onChain = contract;
        depositRead(deposit);
    }

    /** What its contract holds for A: read with the contract, or at start for a channel from the journal. */
    void depositRead(long deposit) {
        if (depositNanoton != deposit) {
            // Only the first time in practice (an OPEN contract's deposit does not change): a
            // reconnect must not write the payer that a round in flight may hold (review AA, AA-6).
            depositNanoton = deposit;
            payer.capAt(deposit);
        }
    }

    /** Its contract's deposit (see {@link #depositNanoton}); empty off chain, and before its contract is read. */
    OptionalLong deposit() {
        return depositNanoton < 0 ? OptionalLong.empty() : OptionalLong.of(depositNanoton);
    }

    /**
     * Its worker asked to close it on {@code session}: routing skips it from now. Without a session,
     * {@code session} holds it (another session's channel, or one read at start: its catch-up
     * round pays here).
     */
    void closeAsked(Consumer<GatewayMessage> session) {
        if (this.session == null) {
            this.session = session;
        }
        closing = true;
    }

    /**
     * Its worker reported an uncooperative close running on it ({@code startedBy}, see {@link
     * #closeOnChain}): routing skips it, and rounds go on paying what runs on it. Its worker's next
     * session finds it no longer OPEN and gets a new channel. Not {@link #closing}, which is a
     * cooperative close's: a next channel the worker asked for before still replaces this one.
     *
     * @return false when one was reported already: said, checked and counted once
     */
    boolean closingOnChain(String startedBy) {
        if (closeOnChain != null) {
            return false;
        }
        closeOnChain = startedBy;
        return true;
    }

    /** Its worker reported an uncooperative close running on it: routing skips the worker while this is its channel. */
    public boolean closingOnChain() {
        return closeOnChain != null;
    }

    /** Its close is signed: no round signs on it from here; recorded once the worker has the close. */
    void closeSigned() {
        closed = true;
    }

    /** Its close's session ended before the close was signed: the channel stays open. */
    void closeAbandoned() {
        if (session == null) {
            closing = false;
        }
    }

    /** Its close was signed as the session ended, and never sent: the channel stays open. */
    void closeUnsent() {
        closed = false;
        closeAbandoned();
    }

    /** A round signed, journaled and sent {@code state}; this context. */
    void sent(SignedSemiChannel state) {
        signed = state.state().body();
        roundError = null;
    }

    /** The round over this channel failed: nothing was sent. */
    void roundFailed(Throwable cause) {
        roundError = cause.toString();
    }

    /**
     * Records whether {@code owed} reaches {@code cap}, which routing reads; true only the first
     * time it goes past it, for the one log line per channel.
     */
    boolean firstPastCap(long owed, long cap) {
        capReached = owed >= cap;
        if (owed <= cap || overCapLogged) {
            return false;
        }
        overCapLogged = true;
        return true;
    }

    /** Any thread: true the first time it asks for a round since a round last took its tokens. */
    boolean askForRound() {
        return payQueued.compareAndSet(false, true);
    }

    /** A round takes its tokens: any metered from here ask for the next. */
    void roundTakes() {
        payQueued.set(false);
    }

    /** Sends {@code state} as a Payment on the attached session; without one, it gets this state, or a later one, when it is back. */
    void send(SignedSemiChannel state) {
        Consumer<GatewayMessage> to = session;
        if (to != null) {
            to.accept(GatewayMessage.newBuilder()
                    .setPayment(Payment.newBuilder().setSignedStateBoc(ByteString.copyFrom(state.boc()))).build());
        }
    }

    // Reads, ChannelBilling's context only.

    boolean attached() {
        return session != null;
    }

    boolean attachedTo(Consumer<GatewayMessage> session) {
        return this.session == session;
    }

    boolean closed() {
        return closed;
    }

    ChannelPayer payer() {
        return payer;
    }

    SemiChannelBody signed() {
        return signed;
    }

    long durableFees() {
        return durableFees;
    }

    OnChainChannel onChain() {
        return onChain;
    }

    String contractAddress() {
        return contractAddress;
    }

    String payoutAddress() {
        return payoutAddress;
    }

    String workerId() {
        return workerId;
    }

    /** Any thread: how many requests run on it now. */
    int running() {
        return inFlight.size();
    }

    /** One channel's share of a payment round. */
    record Due(WorkerChannel channel, long owedNanoton, long tokens, Set<RequestMeter> finished, long finishedFees) {
        /** The round committed and signed: its finished requests are now durable fees. */
        void paid() {
            channel.durableFees += finishedFees;
            channel.finishing.removeAll(finished);
            channel.unsignedTokens.addAndGet(-tokens);
        }
    }
}
