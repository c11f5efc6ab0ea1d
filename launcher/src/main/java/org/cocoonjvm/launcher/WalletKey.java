package org.cocoonjvm.launcher;

import com.iwebpp.crypto.TweetNaclFast;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * The gateway's TON wallet key: an Ed25519 seed (32 bytes, hex, one line) in a file only its owner
 * may read. Created on first start when absent, so a gateway keeps its wallet, and the deposit
 * address its clients were shown, across restarts.
 */
final class WalletKey {
    private static final int SEED_BYTES = 32;

    private WalletKey() {}

    static TweetNaclFast.Signature.KeyPair loadOrCreate(Path file) {
        if (!Files.exists(file)) {
            create(file);
        }
        String text;
        try {
            text = Files.readString(file, StandardCharsets.US_ASCII).strip();
        } catch (IOException e) {
            throw new Cocoon.UsageException("--wallet-key " + file + ": can't read it: " + e.getMessage());
        }
        byte[] seed;
        try {
            seed = HexFormat.of().parseHex(text);
        } catch (IllegalArgumentException e) {
            seed = new byte[0];
        }
        if (seed.length != SEED_BYTES) {
            throw new Cocoon.UsageException("--wallet-key " + file + ": expected a 32-byte Ed25519 seed as 64 hex digits");
        }
        return TweetNaclFast.Signature.keyPair_fromSeed(seed);
    }

    private static void create(Path file) {
        byte[] seed = new byte[SEED_BYTES];
        new SecureRandom().nextBytes(seed);
        try {
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            // Created with owner-only permissions, so the secret is never readable by others, not even briefly.
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(file, HexFormat.of().formatHex(seed) + "\n", StandardCharsets.US_ASCII);
        } catch (FileAlreadyExistsException e) {
            return;  // another process created it first: use theirs
        } catch (IOException e) {
            throw new Cocoon.UsageException("--wallet-key " + file + ": can't create it: " + e.getMessage());
        }
    }
}
