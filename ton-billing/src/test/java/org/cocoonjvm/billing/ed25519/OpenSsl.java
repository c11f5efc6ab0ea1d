package org.cocoonjvm.billing.ed25519;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HexFormat;
import java.util.concurrent.TimeUnit;

/**
 * The {@code openssl} command as an Ed25519 oracle: {@code pkeyutl -verify -rawin} (OpenSSL 3.0
 * or later) over files in a scratch directory, one process per verification.
 */
final class OpenSsl {
    private static final byte[] SPKI_PREFIX = HexFormat.of().parseHex("302a300506032b6570032100");

    private final Path dir;

    private OpenSsl(Path dir) {
        this.dir = dir;
    }

    /** @return null unless an {@code openssl} that verifies raw Ed25519 runs here */
    static OpenSsl find(Path dir) throws IOException, InterruptedException {
        OpenSsl openssl = new OpenSsl(dir);
        try {
            Process version = new ProcessBuilder("openssl", "version").redirectErrorStream(true).start();
            String out = new String(version.getInputStream().readAllBytes());
            if (!version.waitFor(30, TimeUnit.SECONDS) || version.exitValue() != 0 || !out.matches("(?s)OpenSSL [3-9].*")) {
                return null;
            }
        } catch (IOException notInstalled) {
            return null;
        }
        return openssl;
    }

    boolean verifies(byte[] publicKey, byte[] message, byte[] signature) throws IOException, InterruptedException {
        byte[] spki = new byte[SPKI_PREFIX.length + publicKey.length];
        System.arraycopy(SPKI_PREFIX, 0, spki, 0, SPKI_PREFIX.length);
        System.arraycopy(publicKey, 0, spki, SPKI_PREFIX.length, publicKey.length);
        Path key = Files.writeString(dir.resolve("key.pem"), "-----BEGIN PUBLIC KEY-----\n"
                + Base64.getEncoder().encodeToString(spki) + "\n-----END PUBLIC KEY-----\n");
        Path msg = Files.write(dir.resolve("msg"), message);
        Path sig = Files.write(dir.resolve("sig"), signature);
        Process p = new ProcessBuilder("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", key.toString(), "-rawin",
                "-in", msg.toString(), "-sigfile", sig.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("openssl did not answer in 30 s");
        }
        if (out.contains("Signature Verified Successfully")) {
            return true;
        }
        if (out.contains("Signature Verification Failure")) {
            return false;
        }
        throw new IOException("openssl answered neither way: " + out);
    }
}
