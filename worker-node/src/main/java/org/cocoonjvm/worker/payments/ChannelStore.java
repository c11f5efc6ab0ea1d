package org.cocoonjvm.worker.payments;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherVerifier;
import org.cocoonjvm.protocol.files.AtomicFile;

/**
 * The worker's durable payment state in one directory: its key ({@code payment-key}, the hex
 * seed) and, per channel, its terms, latest accepted state, contract and payout addresses, how far
 * it is settled on chain and when ({@code channel-<id>.json}). A closed channel's file stays: it is the
 * worker's payout history ({@link Earnings}). Each file is replaced atomically
 * (protocol's {@link AtomicFile}). With no directory, everything stays in memory.
 */
final class ChannelStore {
    /**
     * A channel's terms, its last accepted state, and where it stands on chain.
     *
     * @param state          null until its first payment (such a channel is never stored)
     * @param channelAddress its contract (raw form); empty off chain, and in files written before
     *                       the address was kept
     * @param openedAt       when this worker first took the channel; null in files written before it was kept
     * @param settledAt      when it reached its {@code settlement}; null while open, and in files
     *                       written before it was kept
     * @param paidOutNanoton what its close on chain paid this worker (before the chain's forwarding
     *                       fee); 0 until it is closed
     * @param closeMessageHash the hash (base64) of the external message this worker closed it with
     *                       (its cooperative close, or the finish of its uncooperative one); empty
     *                       while open, and when the gateway finished it
     * @param payoutAddress  where its contract pays out (raw form), checked on chain when a gateway
     *                       offered it: the owner's payout address may have changed since; null off
     *                       chain, and in files written before it was kept
     * @param receivedNanoton what the payout carried into the payout address: {@code paidOutNanoton}
     *                       less the chain's forwarding fee; null until closed, and in files written
     *                       before it was kept
     */
    record Stored(ChannelTerms terms, SignedSemiChannel state, String channelAddress, Settlement settlement,
                  Instant openedAt, Instant settledAt, long paidOutNanoton, String closeMessageHash,
                  String payoutAddress, Long receivedNanoton) {}

    /**
     * How far a channel is settled on chain. Kept with its state: a restarted worker that forgot a
     * close would show the channel open and try to close it again.
     */
    enum Settlement {
        OPEN("open"),
        /** Its uncooperative close was started; it is finished once the quarantine is over. */
        QUARANTINED("quarantined"),
        /** Its close went through on chain: no state on it pays anything any more. */
        CLOSED("closed");

        final String code;

        Settlement(String code) {
            this.code = code;
        }

        static Settlement of(String code) {
            for (Settlement s : values()) {
                if (s.code.equals(code)) {
                    return s;
                }
            }
            throw new IllegalArgumentException("unknown settlement '" + code + "'");
        }
    }

    /** The worker's payment key, hex seed: written at its first start. */
    static final String KEY_FILE = "payment-key";
    private static final String PREFIX = "channel-";
    private static final String SUFFIX = ".json";

    private final Path dir;
    private final Map<ChannelId, Stored> memory = new HashMap<>();

    /** @param dir null: memory only */
    ChannelStore(Path dir) {
        this.dir = dir;
        if (dir != null) {
            try {
                Files.createDirectories(dir);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot create the payment state directory " + dir, e);
            }
        }
    }

    /** The worker's key, created on first use. */
    PaymentKeyPair key(SecureRandom random) {
        if (dir == null) {
            return PaymentKeyPair.generate(random);
        }
        Path file = dir.resolve(KEY_FILE);
        try {
            if (Files.exists(file)) {
                return PaymentKeyPair.fromSeed(HexFormat.of().parseHex(Files.readString(file, StandardCharsets.US_ASCII).strip()));
            }
            PaymentKeyPair key = PaymentKeyPair.generate(random);
            AtomicFile.replace(file, HexFormat.of().formatHex(key.seed()), true);
            return key;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read or write the payment key " + file, e);
        }
    }

    /**
     * Every stored channel, read at start. A file that does not hold a state of the channel its
     * name says, signed by the gateway it names, stops the worker: it would rather not start than
     * forget what it was paid.
     */
    synchronized List<Stored> loadAll() {
        if (dir == null) {
            return List.copyOf(memory.values());
        }
        List<Stored> all = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, PREFIX + "*" + SUFFIX)) {
            for (Path file : files) {
                all.add(read(file));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
        return all;
    }

    private static Stored read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalStateException(unusable(file, "it is not a file"));
        }
        try {
            JsonObject json = new JsonObject(Files.readString(file, StandardCharsets.UTF_8));
            ChannelTerms terms = new ChannelTerms(ChannelId.fromHex(json.getString("channel_id")),
                    PaymentPublicKey.of(HexFormat.of().parseHex(json.getString("gateway_public_key"))),
                    json.getLong("deposit_cap_nanoton"));
            SignedSemiChannel state = VoucherVerifier.accept(terms, null, SignedSemiChannel.parseBase64(json.getString("signed_state_boc")));
            if (!file.getFileName().toString().equals(PREFIX + terms.channelId().hex() + SUFFIX)) {
                throw new IllegalStateException(file + " holds channel " + terms.channelId());
            }
            // A file written before these fields were kept reads as open with no address: that was
            // not recorded. One closed before the payout was kept was paid its latest state; where
            // it went, and what arrived there, were not recorded.
            Settlement settlement = Settlement.of(json.getString("settlement", Settlement.OPEN.code));
            return new Stored(terms, state, address(json, "channel_address", ""), settlement,
                    json.getInstant("opened_at"), json.getInstant("settled_at"), json.getLong("paid_out_nanoton",
                    settlement == Settlement.CLOSED ? state.sentNanoton() : 0), json.getString("close_message_hash", ""),
                    address(json, "payout_address", null), json.getLong("received_nanoton"));
        } catch (RuntimeException e) {
            throw new IllegalStateException(unusable(file, StoredJson.problem(e)), e);
        }
    }

    /** Checked here, so that a garbled one stops the start naming its file rather than failing each view of it. */
    private static String address(JsonObject json, String field, String none) {
        String address = json.getString(field, none);
        if (address != null && !address.isEmpty()) {
            try {
                TonAddresses.parse(address);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(field + " '" + address + "' is not a TON address");
            }
        }
        return address;
    }

    private static String unusable(Path file, String why) {
        return "the stored channel state " + file + " is unusable (" + why + "): restore the file from a backup; "
                + "the worker does not start without it, as it would forget what that channel paid";
    }

    /** Replaces the channel's stored state; returns once it is on disk. */
    synchronized void save(Stored stored) {
        ChannelId id = stored.terms().channelId();
        if (dir == null) {
            memory.put(id, stored);
            return;
        }
        String json = new JsonObject().put("channel_id", id.hex())
                .put("gateway_public_key", stored.terms().payerKey().hex())
                .put("deposit_cap_nanoton", stored.terms().depositCapNanoton())
                .put("seqno", stored.state().seqno()).put("sent_nanoton", stored.state().sentNanoton())
                .put("signed_state_boc", stored.state().bocBase64())
                .put("channel_address", stored.channelAddress()).put("settlement", stored.settlement().code)
                .put("opened_at", stored.openedAt()).put("settled_at", stored.settledAt())
                .put("paid_out_nanoton", stored.paidOutNanoton()).put("close_message_hash", stored.closeMessageHash())
                .put("payout_address", stored.payoutAddress()).put("received_nanoton", stored.receivedNanoton())
                .encodePrettily();
        try {
            AtomicFile.replace(dir.resolve(PREFIX + id.hex() + SUFFIX), json, false);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot store the state of channel " + id, e);
        }
    }
}
