package org.cocoonjvm.billing.chain;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.ton.ton4j.address.Address;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A private TON chain for tests and demos: the Node server in {@code ton-billing/chain-emulator}
 * (the real emulator, @ton/sandbox, behind a toncenter v2 API on loopback), run as a child process.
 * Everything sent is final when {@link ChainClient#sendBoc} returns.
 */
public final class LocalChain implements AutoCloseable {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

    private final Process process;
    private final ChainClient client;

    private LocalChain(Process process, ChainClient client) {
        this.process = process;
        this.client = client;
    }

    /**
     * Starts the emulator in {@code emulatorDir}. Its npm packages must be installed ({@code npm
     * ci} there, which CI does); with {@code installIfMissing} this runs it once when they are
     * absent.
     */
    public static LocalChain start(Path emulatorDir, boolean installIfMissing) {
        return start(emulatorDir, installIfMissing, System.getenv("PATH"));
    }

    static LocalChain start(Path emulatorDir, boolean installIfMissing, String searchPath) {
        Path node =
                findOnPath("node", searchPath)
                        .orElseThrow(
                                () ->
                                        new ChainException(
                                                "node_missing",
                                                "Node.js not found on PATH; install nodejs (20 or"
                                                        + " later), or point the billing at a real"
                                                        + " toncenter endpoint"));
        if (!Files.isRegularFile(emulatorDir.resolve("server.js"))) {
            throw new ChainException(
                    "emulator_missing", "no chain emulator at " + emulatorDir.toAbsolutePath());
        }
        if (!isInstalled(emulatorDir)) {
            if (!installIfMissing) {
                throw new ChainException(
                        "emulator_not_installed",
                        "chain emulator packages missing: run (cd "
                                + emulatorDir
                                + " && npm ci --legacy-peer-deps)");
            }
            npmCi(emulatorDir, searchPath);
        }
        Process process;
        try {
            process =
                    new ProcessBuilder(node.toString(), "server.js")
                            .directory(emulatorDir.toFile())
                            .redirectError(ProcessBuilder.Redirect.INHERIT)
                            .start();
        } catch (IOException e) {
            throw new ChainException(
                    "emulator_start", "could not start " + node + ": " + e.getMessage(), e);
        }
        BufferedReader out =
                new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String> ready =
                CompletableFuture.supplyAsync(
                        () -> {
                            try {
                                return out.readLine();
                            } catch (IOException e) {
                                return null;
                            }
                        });
        String line;
        try {
            line = ready.get(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException e) {
            process.destroyForcibly();
            if (e instanceof InterruptedException) Thread.currentThread().interrupt();
            throw new ChainException(
                    "emulator_start",
                    "chain emulator printed no ready line within " + START_TIMEOUT,
                    e);
        }
        if (line == null) {
            process.destroyForcibly();
            throw new ChainException(
                    "emulator_start",
                    "chain emulator exited before it was ready (its stderr is above)");
        }
        int port = JsonParser.parseString(line).getAsJsonObject().get("port").getAsInt();
        return new LocalChain(
                process, new ChainClient("http://127.0.0.1:" + port, Duration.ofSeconds(30)));
    }

    /** True when {@code node} is on PATH and the emulator's packages are installed. */
    public static boolean isAvailable(Path emulatorDir) {
        return findOnPath("node", System.getenv("PATH")).isPresent() && isInstalled(emulatorDir);
    }

    public ChainClient client() {
        return client;
    }

    /** Test-only: gives {@code address} coins from the emulator's treasury (non-bounceable). */
    public void faucet(Address address, BigInteger nanoton) {
        JsonObject body = new JsonObject();
        body.addProperty("address", ChainClient.friendly(address));
        body.addProperty("amount", nanoton.toString());
        client.post("/faucet", body);
    }

    /** Test-only: moves chain time forward; returns the chain's new unix time. */
    public long advanceTime(Duration by) {
        JsonObject body = new JsonObject();
        body.addProperty("seconds", by.toSeconds());
        return client.post("/advanceTime", body).getAsJsonObject().get("now").getAsLong();
    }

    /** The chain's unix time (wall clock plus every {@link #advanceTime}). */
    public long now() {
        return client.get("/getMasterchainInfo").getAsJsonObject().get("utime").getAsLong();
    }

    /** A clock that reads {@link #now()}, for wallets' message validity and confirmation ages. */
    public Clock clock() {
        return new Clock() {
            @Override
            public ZoneId getZone() {
                return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(ZoneId zone) {
                throw new UnsupportedOperationException("the chain clock is UTC");
            }

            @Override
            public Instant instant() {
                return Instant.ofEpochSecond(now());
            }
        };
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly();
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private static boolean isInstalled(Path emulatorDir) {
        return Files.isDirectory(emulatorDir.resolve("node_modules/@ton/sandbox"));
    }

    private static void npmCi(Path emulatorDir, String searchPath) {
        Path npm =
                findOnPath("npm", searchPath)
                        .orElseThrow(
                                () -> new ChainException("node_missing", "npm not found on PATH"));
        try {
            Process p =
                    new ProcessBuilder(
                                    npm.toString(),
                                    "ci",
                                    "--legacy-peer-deps",
                                    "--no-audit",
                                    "--no-fund")
                            .directory(emulatorDir.toFile())
                            .inheritIO()
                            .start();
            if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new ChainException("emulator_install", "npm ci failed in " + emulatorDir);
            }
        } catch (IOException e) {
            throw new ChainException("emulator_install", "could not run npm: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ChainException("interrupted", "interrupted during npm ci", e);
        }
    }

    private static Optional<Path> findOnPath(String program, String searchPath) {
        if (searchPath == null) return Optional.empty();
        for (String dir : searchPath.split(File.pathSeparator)) {
            Path candidate = Path.of(dir, program);
            if (Files.isExecutable(candidate)) return Optional.of(candidate);
        }
        return Optional.empty();
    }
}
