package org.cocoonjvm.worker.payments;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;

/**
 * What a worker earned over its whole life, for its owner: {@code GET /earnings}, the
 * {@code earnings} of {@code /status}, the {@code cocoon_worker_lifetime_*} metrics and
 * {@code cocoon worker earnings}. The channels are what the payment state directory keeps of each
 * (closed ones included), the tokens its {@code tokens.json}. A channel never paid leaves no file,
 * so it shows only in the run that opened it.
 *
 * @param tokens   served over all runs
 * @param channels every channel ever paid on, oldest first
 */
public record Earnings(TokenCounts tokens, List<Channel> channels) {
    private static final Comparator<Channel> OLDEST_FIRST = Comparator.comparing(Channel::openedAt,
            Comparator.nullsFirst(Comparator.naturalOrder())).thenComparing(Channel::channelId);

    public Earnings {
        channels = channels.stream().sorted(OLDEST_FIRST).toList();
    }

    /**
     * One channel in the payout history.
     *
     * @param gatewayPublicKey the paying gateway's payment key, hex
     * @param channelAddress   its contract, raw form; empty off chain
     * @param state            {@code open}, {@code quarantined} (an uncooperative close waits out
     *                         its quarantine) or {@code closed} (paid out on chain)
     * @param openedAt         when this worker first took it; null when its file predates that record
     * @param settledAt        when it reached its state; null while open, or when its file predates that record
     * @param earnedNanoton    what the gateway's latest signed state (or its signed close, when
     *                         that paid more) gives this worker on it
     * @param paidOutNanoton   what its close paid out of the contract, before the chain's
     *                         forwarding fee; 0 unless closed
     * @param closeMessageHash the hash (base64) of the external message this worker closed it
     *                         with, by which an explorer finds the close; empty while open, and
     *                         when the gateway finished it
     * @param payoutAddress    where its contract pays out, raw form; null off chain, or when its
     *                         file predates that record
     * @param receivedNanoton  what its payout carried into the payout address, {@code paidOutNanoton}
     *                         less the chain's forwarding fee; null unless closed, or when its file
     *                         predates that record
     */
    public record Channel(String channelId, String gatewayPublicKey, String channelAddress, String state,
                          Instant openedAt, Instant settledAt, long earnedNanoton, long paidOutNanoton,
                          String closeMessageHash, String payoutAddress, Long receivedNanoton) {
        static Channel of(ChannelStore.Stored stored) {
            long sent = stored.state() == null ? 0 : stored.state().sentNanoton();
            return new Channel(stored.terms().channelId().hex(), stored.terms().payerKey().hex(), stored.channelAddress(),
                    stored.settlement().code, stored.openedAt(), stored.settledAt(),
                    Math.max(sent, stored.paidOutNanoton()), stored.paidOutNanoton(), stored.closeMessageHash(),
                    stored.payoutAddress(), stored.receivedNanoton());
        }

        /** No value is null here, as in {@code /status} and the gateway's {@code /admin/workers}, never an empty string. */
        JsonObject toJson() {
            JsonObject json = new JsonObject().put("channel_id", channelId).put("gateway_public_key", gatewayPublicKey);
            OwnerAddresses.putContract(json, "channel_address", channelAddress).put("state", state)
                    .put("opened_at", openedAt).put("settled_at", settledAt).put("earned_nanoton", earnedNanoton)
                    .put("paid_out_nanoton", paidOutNanoton).put("received_nanoton", receivedNanoton)
                    .put("close_message_hash", closeMessageHash.isEmpty() ? null : closeMessageHash);
            return OwnerAddresses.putWallet(json, "payout_address", payoutAddress);
        }
    }

    static Earnings of(TokenCounts tokens, List<ChannelStore.Stored> channels) {
        return new Earnings(tokens, channels.stream().map(Channel::of).toList());
    }

    /**
     * Reads a worker's payment state directory ({@code --payment-dir}) without starting it, while
     * it runs or not: the tokens as last saved, the channels as last stored.
     *
     * @throws NoSuchFileException         when {@code stateDir} does not exist
     * @throws IllegalStateException        when it is not a directory, holds no {@code payment-key} (no
     *                                      worker's payment dir: a gateway's data dir, one level too
     *                                      high), or a file in it is unusable (the worker would not start on it either)
     * @throws java.io.UncheckedIOException when a file in it cannot be read
     */
    public static Earnings read(Path stateDir) throws NoSuchFileException {
        if (!Files.exists(stateDir)) {
            throw new NoSuchFileException(stateDir.toString());
        }
        if (!Files.isDirectory(stateDir)) {
            throw new IllegalStateException(stateDir + " is not a directory: --payment-dir names the directory the worker "
                    + "was started with");
        }
        // A worker writes its key there at its first start, before anything else: without one, all
        // zeros would tell an owner who mistyped the path that they earned nothing (audit P, P-4).
        if (!Files.exists(stateDir.resolve(ChannelStore.KEY_FILE))) {
            throw new IllegalStateException(stateDir + " holds no worker payment state (no " + ChannelStore.KEY_FILE
                    + "): not a directory a worker was started with as --payment-dir");
        }
        return of(LifetimeTokens.read(stateDir), new ChannelStore(stateDir).loadAll());
    }

    /** nanoTON accepted in signed states over all channels, open and closed. */
    public long earnedNanoton() {
        return channels.stream().mapToLong(Channel::earnedNanoton).sum();
    }

    /** nanoTON the closed channels paid out on chain. */
    public long paidOutNanoton() {
        return channels.stream().mapToLong(Channel::paidOutNanoton).sum();
    }

    /** The lifetime totals, as {@code /status} shows them under {@code earnings}. */
    public JsonObject totals() {
        return new JsonObject().put("completion_tokens", tokens.completion()).put("prompt_tokens", tokens.prompt())
                .put("earned_nanoton", earnedNanoton()).put("paid_out_nanoton", paidOutNanoton());
    }

    /** The totals and the payout history, as {@code GET /earnings} and {@code cocoon worker earnings} show them. */
    public JsonObject toJson() {
        JsonArray history = new JsonArray();
        channels.forEach(c -> history.add(c.toJson()));
        return totals().put("channels", history);
    }
}
