package org.cocoonjvm.worker.payments;

import com.google.protobuf.ByteString;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.cocoonjvm.billing.chain.ChainException;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.pricing.Multipliers;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.protocol.grpc.ChannelAccepted;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.PriceTerms;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.ton.ton4j.address.Address;

/**
 * Takes up the channels gateways offer ({@link WorkerPayments#open}): checks the terms (on chain,
 * the contract), opens the channel's account or takes a known one up again, and warns when the
 * credit window or the deposit cap would hold this worker's sequences. Owns the credit-window
 * warnings said already; the accounts stay {@link WorkerPayments}'s, which this adds to. Apart
 * because an offer's checks are one step of their own, done when a session registers and before
 * any payment. Blocking with a chain client (called off the event loop); logs as WorkerPayments,
 * whose log operators read.
 */
final class ChannelOffers {
    private static final Logger log = LoggerFactory.getLogger(WorkerPayments.class);
    private final WorkerPaymentOptions options;
    private final ChannelStore store;
    private final PaymentKeyPair key;
    private final Map<ChannelId, ChannelAccount> channels;
    /** Null: channels are taken on the gateway's word, off chain only. */
    private final OnChainSettlement chain;
    /** The credit-window warnings said already: model, fee, coefficient, multiplier and payment round. */
    private final Set<String> windowWarned = ConcurrentHashMap.newKeySet();

    /** @param channels WorkerPayments' accounts, by channel: an offer adds its channel's */
    ChannelOffers(WorkerPaymentOptions options, OnChainSettlement chain, ChannelStore store, PaymentKeyPair key,
                  Map<ChannelId, ChannelAccount> channels) {
        this.options = options;
        this.chain = chain;
        this.store = store;
        this.key = key;
        this.channels = channels;
    }

    /** See {@link WorkerPayments#open}. */
    ChannelAccepted open(PaymentChannel terms) {
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
        SignedSemiChannel initial = account.initialState(key);
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

    /**
     * Long.MAX_VALUE without a chain client: the gateway's cap alone then bounds the channel.
     *
     * @throws ChainException when the channel on chain is not what the terms say
     */
    private long depositOnChain(ChannelId id, PaymentPublicKey gatewayKey, String channelAddress) {
        return chain == null ? Long.MAX_VALUE
                : chain.deposit(id, gatewayKey, key.publicKey(), payout(options), channelAddress);
    }

    /** The payout address a worker paid on chain needs, parsed; refused as its setting when it is not one. */
    static Address payout(WorkerPaymentOptions options) {
        try {
            return TonAddresses.parse(options.payoutAddress());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("payout address '" + options.payoutAddress()
                    + "' is not a TON address; a worker paid on chain needs one");
        }
    }
}
