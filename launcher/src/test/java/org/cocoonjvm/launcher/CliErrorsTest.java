package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Bad options and files that cannot be used, as an operator meets them: one {@code cocoon: …}
 * line naming the option or file and the value, exit 2 for bad options and 1 for a failure to
 * start, never a stack trace.
 */
@Timeout(120)  // a command that starts instead of refusing would run until stopped
class CliErrorsTest {
    @TempDir
    static Path dir;
    private static Path model;

    record Run(int exit, String err) {
        /** The whole of stderr is one line, and it is the expected one. */
        void is(int expectedExit, String line) {
            assertThat(exit).as(err).isEqualTo(expectedExit);
            assertThat(err).isEqualTo(line);
        }

        void isOneLine(int expectedExit, String start) {
            assertThat(exit).as(err).isEqualTo(expectedExit);
            assertThat(err).startsWith(start).doesNotContain("\n").doesNotContain("Exception");
        }
    }

    @BeforeAll
    static void writeModel() {
        assertThat(random("--format", "hf", "--out", dir.resolve("m").toString()).exit()).isZero();
        model = dir.resolve("m").resolve("hf");
    }

    @Test
    void attestProxy_badOptions_nameTheOptionAndValue() {
        cocoon("attest", "proxy", "--gateway", "gw.example", "--attestation", "dev").is(2,
                "cocoon: --gateway must be HOST:PORT (the gateway's client port), got 'gw.example'");
        cocoon("attest", "proxy", "--gateway", "127.0.0.1:8080").is(2,
                "cocoon: --attestation dev or tdx is needed: there is nothing to check with none");
        cocoon("attest", "proxy", "--gateway", "127.0.0.1:8080", "--attestation", "dev", "--dev-seed-file",
                dir.resolve("no-seed").toString()).isOneLine(2, "cocoon: --attestation dev needs --policy FILE");
        cocoon("attest", "proxy", "--gateway", "127.0.0.1:8080", "--listen", "127.0.0.1:8443").is(2,
                "cocoon: Invalid value for option '--listen': '127.0.0.1:8443' is not an int (see: cocoon attest proxy --help)");
        cocoon("gateway", "--api-key", "sk-x", "--admin-key", "adm", "--client-plaintext").is(2,
                "cocoon: --client-plaintext is for a gateway with --attestation; without it the client port is plain HTTP already");
    }

    /** Audit L, 8: a negative grant started a gateway that credited nothing; negative prices and limits were stack traces. */
    @Test
    void gateway_negativeAmountsAndLimits_areUsageErrors() {
        String[] base = {"gateway", "--api-key", "sk-x", "--admin-key", "adm", "--data-dir", dir.resolve("gw").toString()};
        cocoon(base, "--grant-nanoton", "-5").is(2, "cocoon: --grant-nanoton must be at least 0, got -5");
        cocoon(base, "--price-per-token", "-1").is(2, "cocoon: --price-per-token must be at least 0, got -1");
        cocoon(base, "--worker-fee-per-token", "3").is(2, "cocoon: --worker-fee-per-token (3) must not exceed "
                + "--price-per-token (2): the gateway would pay workers more than clients pay it");
        cocoon(base, "--channel-cap-nanoton", "-1").is(2, "cocoon: --channel-cap-nanoton must be at least 0, got -1");
        cocoon(base, "--payment-every-tokens", "0").is(2, "cocoon: --payment-every-tokens must be at least 1, got 0");
        cocoon(base, "--rpm", "-1").is(2, "cocoon: --rpm must be at least 0, got -1");
        cocoon(base, "--max-concurrent", "-2").is(2, "cocoon: --max-concurrent must be at least 0, got -2");
        cocoon(base, "--event-loops", "-4").is(2, "cocoon: --event-loops must be at least 0, got -4");
    }

    @Test
    void worker_badEngineOptions_nameTheOptionAndValue() {
        String[] base = {"worker", "--id", "w", "--engine", "synthetic"};
        String[] natively = {"worker", "--id", "w", "--model", model.toString()};
        cocoon(natively, "--kv-tokens", "0").is(2, "cocoon: --kv-tokens must be at least 16, got 0");
        cocoon(base, "--max-batch", "-3").is(2, "cocoon: --max-batch must be between 1 and 65536, got -3");
        // A capacity a gateway refuses at Hello is refused here, not at every registration (review Y, Y-6).
        cocoon(base, "--max-batch", "100000").is(2, "cocoon: --max-batch must be between 1 and 65536, got 100000");
        cocoon("worker", "--id", "w", "--engine", "forward", "--forward-url", "http://127.0.0.1:1", "--forward-model", "m",
                "--model", model.toString(), "--forward-max-concurrent", "100000")
                .is(2, "cocoon: --forward-max-concurrent must be between 1 and 65536, got 100000");
        cocoon(natively, "--threads", "-1").is(2, "cocoon: --threads must be between 0 and 1024, got -1");
        cocoon(base, "--synthetic-rate", "0").is(2, "cocoon: --synthetic-rate must be positive, got 0.0");
        cocoon("worker", "--id", "w", "--engine", "forward", "--forward-url", "ftp://x", "--forward-model", "m",
                "--model", model.toString()).is(2, "cocoon: --forward-url must be http://HOST[:PORT], got ftp://x");
    }

    @Test
    void worker_threadsPastTheKernelsBound_isAUsageError() {
        // The kernels refuse more than 1024 threads, but only once the model is loaded, and as a failure to start.
        cocoon("worker", "--id", "w", "--model", model.toString(), "--threads", "1025").is(2,
                "cocoon: --threads must be between 0 and 1024, got 1025");
        cocoon("generate", "--model", model.toString(), "--prompt", "hi", "--threads", "1025").is(2,
                "cocoon: --threads must be between 0 and 1024, got 1025");
    }

    @Test
    void worker_optionsOfAnotherEngine_areAUsageError_namingTheEngineTheyAreFor() {
        String m = model.toString();
        // The audit's case: --engine forward forgotten, and the worker loaded the model to serve it natively.
        cocoon("worker", "--id", "w", "--model", m, "--forward-url", "http://127.0.0.1:1", "--forward-model", "x").is(2,
                "cocoon: --engine native (the default) does not use --forward-url, --forward-model (for --engine forward): "
                        + "give --engine forward or drop them");
        cocoon("worker", "--id", "w", "--engine", "synthetic", "--model", dir.resolve("nonexistent").toString(),
                "--kv-tokens", "5").is(2, "cocoon: --engine synthetic does not use --model (for --engine native, forward), "
                + "--kv-tokens (for --engine native): give --engine native or drop them");
        cocoon("worker", "--id", "w", "--engine", "forward", "--model", m, "--forward-url", "http://127.0.0.1:1",
                "--forward-model", "x", "--max-batch", "8", "--no-forward-running-usage", "--synthetic-rate", "5").is(2,
                "cocoon: --engine forward does not use --max-batch (for --engine native, synthetic), "
                        + "--synthetic-rate (for --engine synthetic): give --engine synthetic or drop them");
        cocoon("worker", "--id", "w", "--engine", "forward", "--model", m, "--forward-url", "http://127.0.0.1:1",
                "--forward-model", "x", "--threads", "2", "--synthetic-rate", "5").is(2,
                "cocoon: --engine forward does not use --threads (for --engine native), "
                        + "--synthetic-rate (for --engine synthetic): drop them");
        cocoon("demo", "--engine", "synthetic", "--threads", "2").is(2,
                "cocoon: --engine synthetic does not use --threads (for --engine native): give --engine native or drop it");
    }

    /** Checked by the command, not by picocli, which would ask it of {@code cocoon worker earnings} too. */
    @Test
    void worker_withoutId_isTheUsualMissingOptionLine() {
        cocoon("worker", "--engine", "synthetic").is(2, "cocoon: Missing required option: '--id=<id>' (see: cocoon worker --help)");
    }

    @Test
    void worker_blankId_namesTheOption() {
        cocoon("worker", "--id", "", "--engine", "synthetic").is(2, "cocoon: --id must not be blank");
    }

    /** Audit L, 4: the gateway writes the id as it is into its log, where a newline in it forged access-log lines. */
    @Test
    void worker_anIdTheGatewayWouldRefuse_isAUsageError_namingTheCharacter() {
        cocoon("worker", "--id", "w\n{\"status\":200}", "--engine", "synthetic").is(2,
                "cocoon: --id must be printable ASCII without spaces; character 1 is U+000A");
        cocoon("worker", "--id", "gpu 0", "--engine", "synthetic").is(2,
                "cocoon: --id must be printable ASCII without spaces; character 3 is U+0020");
        cocoon("worker", "--id", "w".repeat(129), "--engine", "synthetic").is(2,
                "cocoon: --id must be at most 128 characters, got 129");
    }

    /** Audit G, M3: these were stack traces, after a wallet check that told the operator to send TON. */
    @Test
    void worker_aBadPayoutAddressOrTonApi_isAUsageError_askingTheChainNothing() throws IOException {
        String[] onChain = {"worker", "--id", "w", "--engine", "synthetic", "--payment-dir", dir.resolve("w").toString()};
        try (WalletLog wallet = new WalletLog()) {
            cocoon(onChain, "--ton-api", "http://127.0.0.1:" + freePort(), "--payout-address", "notanaddress")
                    .isOneLine(2, "cocoon: --payout-address: 'notanaddress' is not a TON address (");
            cocoon(onChain, "--ton-api", "127.0.0.1:8081").is(2,
                    "cocoon: --ton-api: must be http(s)://HOST[:PORT][/PATH], got 127.0.0.1:8081");
            assertThat(wallet.lines()).isEmpty();
        }
    }

    /** Audit M, M-7: the option that decides where the money goes was accepted off chain, and did nothing. */
    @Test
    void worker_onChainOptionsWithoutTonApi_areAUsageError_namingThem() {
        String[] offChain = {"worker", "--id", "w", "--engine", "synthetic"};
        cocoon(offChain, "--payout-address", "UQBrwxKW0123456789012345678901234567890123456789").is(2,
                "cocoon: without --ton-api channels stay off chain and pay out nowhere, so --payout-address would do "
                        + "nothing: give --ton-api URL or drop it");
        cocoon(offChain, "--wallet-key", dir.resolve("wk").toString(), "--close-threshold-nanoton", "5").is(2,
                "cocoon: without --ton-api channels stay off chain and pay out nowhere, so --wallet-key, "
                        + "--close-threshold-nanoton would do nothing: give --ton-api URL or drop them");
    }

    @Test
    void worker_anUnreachableTonApi_isOneLineNamingIt_andNotAWalletToFund() throws IOException {
        String api = "http://127.0.0.1:" + freePort();
        try (WalletLog wallet = new WalletLog()) {
            cocoon("worker", "--id", "w", "--engine", "synthetic", "--payment-dir", dir.resolve("w").toString(),
                    "--ton-api", api).is(1, "cocoon: --ton-api: toncenter " + api + "/getAddressState: connection refused");
            assertThat(wallet.lines()).isEmpty();
        }
    }

    /** Audit J-18: these ran, failed later, or were one message for five options that named none. */
    @Test
    void benchGateway_badOptions_nameTheOptionAndValue() {
        cocoon("bench", "gateway", "--concurrency", "0").is(2,
                "cocoon: --concurrency must be one or more values between 1 and 4096, got [0]");
        cocoon("bench", "gateway", "--concurrency", "8,-1").is(2,
                "cocoon: --concurrency must be one or more values between 1 and 4096, got [8, -1]");
        cocoon("bench", "gateway", "--concurrency", "").is(2, "cocoon: Invalid value for option '--concurrency' (<concurrencies>): "
                + "'' is not an int (see: cocoon bench gateway --help)");
        cocoon("bench", "gateway", "--phase", "2 s").is(2,
                "cocoon: --phase: '2 s' is not a k6 duration (like \"500ms\", \"30s\", \"2m\", \"1h30m\")");
        cocoon("bench", "gateway", "--phase", "50ms").is(2, "cocoon: --phase must be at least 100ms, got 50ms");
        cocoon("bench", "gateway", "--warmup", "").is(2, "cocoon: --warmup: a duration is required (like \"30s\" or \"2m\")");
        cocoon("bench", "gateway", "--rounds", "0").is(2, "cocoon: --rounds must be at least 1, got 0");
        cocoon("bench", "gateway", "--synthetic-rate", "-5").is(2, "cocoon: --synthetic-rate must be positive, got -5.0");
        cocoon("bench", "gateway", "--reply-tokens", "0").is(2, "cocoon: --reply-tokens must be at least 1, got 0");
        cocoon("bench", "gateway", "--reply-spread", "1").is(2, "cocoon: --reply-spread must be at least 0 and below 1, got 1.0");
        cocoon("bench", "gateway", "--idle-streams", "-1").is(2, "cocoon: --idle-streams must be at least 0, got -1");
        cocoon("bench", "gateway", "--rounds", "two").isOneLine(2, "cocoon: Invalid value for option '--rounds': 'two' is not an int");
        cocoon("bench", "gateway", "--concurency", "8").is(2,
                "cocoon: Unknown options: '--concurency', '8' (see: cocoon bench gateway --help)");
        cocoon("bench", "payments", "--every-tokens", "0").is(2, "cocoon: --every-tokens must be at least 1, got 0");
        cocoon("bench", "payments", "--concurrency", "0").is(2, "cocoon: --concurrency must be between 1 and 4096, got 0");
    }

    @Test
    void demo_kvTokensBelowABlock_isAUsageError() {
        cocoon("demo", "--kv-tokens", "0").is(2, "cocoon: --kv-tokens must be at least 16, got 0");
    }

    @Test
    void generate_badOptions_areUsageErrors() {
        String m = model.toString();
        cocoon("generate", "--model", m, "--prompt", "").is(2,
                "cocoon: the prompt is empty: generation needs at least one token to follow");
        cocoon("generate", "--model", m, "--prompt", "hi", "--temperature", "-1").is(2,
                "cocoon: --temperature must be 0 or more, got -1.0");
        cocoon("generate", "--model", m, "--prompt", "hi", "--temperature", "1", "--greedy").is(2,
                "cocoon: --greedy samples at temperature 0: drop it or --temperature 1.0");
    }

    @Test
    void aMissingModel_isOneLineNamingThePath() {
        Path missing = dir.resolve("nonexistent");
        cocoon("generate", "--model", missing.toString(), "--prompt", "hi").is(1,
                "cocoon: " + missing + ": no such file or directory");
        cocoon("model", "hash", "--model", missing.toString()).is(1, "cocoon: " + missing + ": no such file or directory");
    }

    @Test
    void aTruncatedOrCorruptModel_isOneLine() throws IOException {
        Path truncated = copyOfModel("truncated");
        Path weights = truncated.resolve("model.safetensors");
        Files.write(weights, Arrays.copyOf(Files.readAllBytes(weights), 1000));
        cocoon("model", "hash", "--model", truncated.toString()).isOneLine(1, "cocoon: " + truncated);

        Path corrupt = copyOfModel("corrupt");
        byte[] header = "{\"a\":x}".getBytes(StandardCharsets.US_ASCII);
        Files.write(corrupt.resolve("model.safetensors"), ByteBuffer.allocate(8 + header.length)
                .order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).put(header).array());
        Run r = cocoon("model", "hash", "--model", corrupt.toString());
        r.isOneLine(1, "cocoon: ");
        assertThat(r.err()).contains("malformed safetensors header").contains("line 1, column").doesNotContain("REDACTED");
    }

    @Test
    void modelRandom_badShapes_nameTheValue() {
        String out = dir.resolve("bad").toString();
        random("--arch", "gpt2", "--out", out).is(2, "cocoon: arch must be llama, qwen2 or qwen3: gpt2");
        random("--heads", "5", "--out", out).is(2, "cocoon: heads (5) must be a multiple of kv_heads (2)");
        random("--vocab", "100", "--out", out).isOneLine(2, "cocoon: vocab must be at least 259");
        random("--layers", "0", "--out", out).isOneLine(2, "cocoon: model dimensions must be positive");
        assertThat(random("--layers", "0", "--out", out).err()).contains("layers 0,");
        assertThat(random("--hidden", "63", "--out", out).err()).contains("head_dim 15,");
        assertThat(random("--heads", "0", "--out", out).err()).contains("heads 0,");
    }

    @Test
    void modelRandom_q8_0ForHf_isRefused() {
        random("--dtype", "q8_0", "--format", "hf", "--out", dir.resolve("q8hf").toString()).is(2,
                "cocoon: --dtype q8_0 is GGUF only: give --format gguf, or another --dtype for hf");
        assertThat(dir.resolve("q8hf")).doesNotExist();
    }

    @Test
    void modelRandom_anOutThatCannotBeCreated_isOneLine() throws IOException {
        Path file = Files.writeString(dir.resolve("a-file"), "");
        random("--out", file.resolve("sub").toString()).isOneLine(1, "cocoon: " + file);
    }

    @Test
    void everyOptionOfTheModelCommands_isDescribed() {
        CommandLine cli = Cocoon.commandLine();
        CommandLine model = cli.getSubcommands().get("model");
        for (CommandLine command : List.of(cli.getSubcommands().get("generate"), cli.getSubcommands().get("worker"),
                model.getSubcommands().get("random"), model.getSubcommands().get("hash"))) {
            for (OptionSpec option : command.getCommandSpec().options()) {
                assertThat(String.join(" ", option.description())).as(command.getCommandName() + " " + option.longestName())
                        .isNotBlank();
            }
        }
    }

    /** What the node's wallet check logged while open. */
    private static final class WalletLog implements AutoCloseable {
        private final Logger logger = (Logger) LoggerFactory.getLogger(NodeWallet.class);
        private final ListAppender<ILoggingEvent> events = new ListAppender<>();

        WalletLog() {
            events.start();
            logger.addAppender(events);
        }

        List<String> lines() {
            return events.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
        }

        @Override
        public void close() {
            logger.detachAppender(events);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    /** {@code model random} of a small valid shape, with {@code changes} (option, value pairs) in place of its values. */
    private static Run random(String... changes) {
        Map<String, String> options = new LinkedHashMap<>(Map.of("--layers", "2", "--hidden", "64", "--heads", "4",
                "--kv-heads", "2", "--ffn", "128", "--vocab", "300"));
        for (int i = 0; i < changes.length; i += 2) {
            options.put(changes[i], changes[i + 1]);
        }
        List<String> args = new ArrayList<>(List.of("model", "random"));
        options.forEach((option, value) -> args.addAll(List.of(option, value)));
        return cocoon(args.toArray(String[]::new));
    }

    private static Path copyOfModel(String name) throws IOException {
        Path copy = dir.resolve(name);
        Files.createDirectories(copy);
        try (Stream<Path> files = Files.list(model)) {
            for (Path f : files.toList()) {
                Files.copy(f, copy.resolve(f.getFileName()));
            }
        }
        return copy;
    }

    private static Run cocoon(String[] base, String... more) {
        return cocoon(Stream.concat(Stream.of(base), Stream.of(more)).toArray(String[]::new));
    }

    private static Run cocoon(String... args) {
        StringWriter err = new StringWriter();
        CommandLine cli = Cocoon.commandLine();
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute(args);
        return new Run(exit, err.toString().strip());
    }
}
