package org.cocoonjvm.worker.payments;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SignedSemiChannel;

/**
 * The worker's durable payment state in one directory: its key ({@code payment-key}, the hex
 * seed) and, per channel, the latest accepted state ({@code channel-<id>.json}). Each file is
 * replaced atomically (temp file, fsync, rename, fsync of the directory), so a crash leaves the
 * old state or the new one, never a torn file. With no directory, everything stays in memory.
 */
final class ChannelStore {
    /** A channel's last accepted state, with the gateway key that signed it. */
    record Stored(ChannelId channelId, PaymentPublicKey gatewayKey, SignedSemiChannel state) {}

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
        Path file = dir.resolve("payment-key");
        try {
            if (Files.exists(file)) {
                return PaymentKeyPair.fromSeed(HexFormat.of().parseHex(Files.readString(file, StandardCharsets.US_ASCII).strip()));
            }
            PaymentKeyPair key = PaymentKeyPair.generate(random);
            write(file, HexFormat.of().formatHex(key.seed()), true);
            return key;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read or write the payment key " + file, e);
        }
    }

    /** The stored state of a channel, or null. */
    synchronized Stored load(ChannelId id) {
        if (dir == null) {
            return memory.get(id);
        }
        Path file = fileOf(id);
        if (!Files.exists(file)) {
            return null;
        }
        try {
            JsonObject json = new JsonObject(Files.readString(file, StandardCharsets.UTF_8));
            Stored stored = new Stored(ChannelId.fromHex(json.getString("channel_id")),
                    PaymentPublicKey.of(HexFormat.of().parseHex(json.getString("gateway_public_key"))),
                    SignedSemiChannel.parseBase64(json.getString("signed_state_boc")));
            if (!stored.channelId().equals(id) || !stored.state().channelId().equals(id)) {
                throw new IllegalStateException(file + " holds channel " + stored.channelId() + ", not " + id);
            }
            return stored;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /** Replaces the channel's stored state; returns once it is on disk. */
    synchronized void save(Stored stored) {
        if (dir == null) {
            memory.put(stored.channelId(), stored);
            return;
        }
        String json = new JsonObject().put("channel_id", stored.channelId().hex())
                .put("gateway_public_key", stored.gatewayKey().hex())
                .put("seqno", stored.state().seqno()).put("sent_nanoton", stored.state().sentNanoton())
                .put("signed_state_boc", stored.state().bocBase64()).encodePrettily();
        try {
            write(fileOf(stored.channelId()), json, false);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot store the state of channel " + stored.channelId(), e);
        }
    }

    private Path fileOf(ChannelId id) {
        return dir.resolve("channel-" + id.hex() + ".json");
    }

    /** @param secret readable by the owner only (the key), where the file system has POSIX permissions */
    private void write(Path file, String content, boolean secret) throws IOException {
        Path temp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(temp);
        if (secret && dir.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            Files.createFile(temp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        }
        try (FileChannel out = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer bytes = ByteBuffer.wrap(content.getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                out.write(bytes);
            }
            out.force(true);
        }
        try {
            Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("the file system of " + dir + " cannot rename atomically", e);
        }
        // The rename is durable only once the directory entry is.
        try (FileChannel directory = FileChannel.open(dir, StandardOpenOption.READ)) {
            directory.force(true);
        }
    }
}
