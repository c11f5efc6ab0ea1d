package org.cocoonjvm.gateway.billing;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import io.vertx.core.Context;
import org.cocoonjvm.billing.chain.QuarantinedState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What {@link ChannelBilling} reads on chain of channels it neither opens nor closes: at start,
 * the deposits of the on-chain channels in the journal; and, when a worker reports an
 * uncooperative close, whether this gateway's payer key started it. Apart from the verticle since
 * neither is a payment nor a cooperative close; it holds no state of its own: what it learns goes
 * into the channels ({@link OpenChannels}, {@link WorkerChannel}) and {@link PaymentStats}.
 *
 * <p>ChannelBilling makes it at its start and calls it on its context only; the chain is read on
 * worker threads, and the answers are applied back on that context.
 */
final class OnChainReads {
    /** ChannelBilling's logger: these lines were its own, and operators' log filters name it. */
    private static final Logger log = LoggerFactory.getLogger(ChannelBilling.class);

    private final Context context;
    /** Null: off-chain channels only, and nothing is read. */
    private final ChannelOnChain onChain;
    private final OpenChannels channels;
    private final PaymentStats stats;

    OnChainReads(Context context, ChannelOnChain onChain, OpenChannels channels, PaymentStats stats) {
        this.context = context;
        this.onChain = onChain;
        this.channels = channels;
        this.stats = stats;
    }

    /**
     * The deposits of the on-chain channels read from the journal, one after another off this
     * context: until its worker is back, such a channel showed, and counted in the deposits gauge,
     * the cap set now, which an earlier setting may not have funded (review AA, AA-7). One the
     * chain does not answer for keeps that estimate until its worker's session reads it.
     */
    void readDeposits() {
        // Only channels holding states: one bound whose open failed before its deploy has no contract to read.
        List<WorkerChannel> unread = channels.all().stream()
                .filter(c -> c.contractAddress() != null && c.signed().seqno() > 0 && c.deposit().isEmpty()).toList();
        if (onChain == null || unread.isEmpty()) {
            return;
        }
        context.executeBlocking(() -> {
            Map<WorkerChannel, Long> read = new HashMap<>();
            int failed = 0;
            for (WorkerChannel c : unread) {
                try {
                    onChain.depositIfOpen(c.contractAddress()).ifPresent(deposit -> read.put(c, deposit));
                } catch (RuntimeException e) {
                    failed++;
                }
            }
            if (failed > 0) {
                log.warn("could not read the deposit of {} of the {} on-chain channels in the journal: they show the cap set"
                        + " now until their workers are back", failed, unread.size());
            }
            return read;
        }, false).onSuccess(read -> {
            read.forEach((c, deposit) -> {
                if (c.deposit().isEmpty()) {
                    c.depositRead(deposit);
                }
            });
            channels.tally();
        });
    }

    /** {@link ChannelBilling#closingOnChain}, on this context. */
    void closingOnChain(WorkerChannel channel, String workerId, boolean startedWithGatewayKey) {
        if (!channel.closingOnChain(startedWithGatewayKey ? "gateway_key" : "worker")) {
            return;  // reported already: one chain read, line and count per close (review AA, AA-3)
        }
        log.warn("worker {} reports an uncooperative close running on chain on channel {}, started {}: no new request is"
                        + " routed to it over that channel; its next session gets a new one", workerId, channel.id(),
                startedWithGatewayKey ? "with this gateway's payer key" : "by the worker");
        if (!startedWithGatewayKey || onChain == null || channel.contractAddress() == null) {
            return;
        }
        context.executeBlocking(() -> onChain.closeUnderWay(channel.contractAddress()), false).onComplete(read -> {
            if (read.failed()) {
                log.warn("could not read the close on channel {} at {}", channel.id(), channel.contractAddress(),
                        read.cause());
            } else if (read.result().filter(QuarantinedState::submittedByA).isPresent()) {
                QuarantinedState close = read.result().get();
                stats.countCloseStartedOutside();
                log.error("channel {} at {}: an uncooperative close was started on chain with this gateway's payer key,"
                                + " not by this gateway, with a state of seqno {} sending {} nanoTON (the latest this"
                                + " gateway signed: seqno {}, {} nanoTON). Whoever did it can read the payer key where"
                                + " this gateway keeps it (its ledger's channel journal): check who can", channel.id(),
                        channel.contractAddress(), close.seqnoA(), close.sentA(), channel.signed().seqno(),
                        channel.signed().sentNanoton());
            }
        });
    }
}
