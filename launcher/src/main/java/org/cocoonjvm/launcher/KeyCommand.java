package org.cocoonjvm.launcher;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.Callable;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.protocol.openai.BearerKeys;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code cocoon key}: client API keys, for a gateway's {@code --api-keys-file}. */
@Command(name = "key", mixinStandardHelpOptions = true, description = "Client API keys for a gateway's --api-keys-file.",
        subcommands = KeyCommand.New.class)
final class KeyCommand {

    /**
     * A new key: the key on stdout, for its client, and its line for the keys file with the key's
     * digest in place of the key, so that the file a gateway reads holds nothing anyone could spend.
     */
    @Command(name = "new", mixinStandardHelpOptions = true,
            description = {"Makes a client API key: prints the key (give it to its client; it is kept nowhere) and "
                    + "appends its digest, account and limits to the gateway's keys file (--append-to), or prints that "
                    + "line on stderr.",
                    "A running gateway reads its --api-keys-file again when the file changes."})
    static final class New implements Callable<Integer> {
        @Spec CommandSpec spec;

        @Option(names = "--account", description = "The account it spends (default: account-<its digest's first 16 hex digits>); "
                + "a rotated key names its predecessor's.")
        String account;

        @Option(names = "--rpm", description = "Its requests per minute, in place of the gateway's --rpm; 0: unlimited.")
        Long requestsPerMinute;

        @Option(names = "--tpm", description = "Its tokens per minute, in place of the gateway's --tpm; 0: unlimited.")
        Long tokensPerMinute;

        @Option(names = "--max-concurrent", description = "Its requests in flight, in place of the gateway's --max-concurrent; 0: unlimited.")
        Long maxConcurrent;

        @Option(names = "--append-to", paramLabel = "FILE", description = "The gateway's --api-keys-file: the line is appended "
                + "(the file is created, readable by its owner only, if missing).")
        Path keysFile;

        @Override
        public Integer call() throws IOException {
            checkLimit("--rpm", requestsPerMinute);
            checkLimit("--tpm", tokensPerMinute);
            checkLimit("--max-concurrent", maxConcurrent);
            String key = Keys.generate("sk-cocoon-");
            StringBuilder line = new StringBuilder(ClientKeys.DIGEST_PREFIX).append(BearerKeys.hash(key));
            if (account != null) {
                line.append(' ').append(account);
            }
            appendLimit(line, "rpm", requestsPerMinute);
            appendLimit(line, "tpm", tokensPerMinute);
            appendLimit(line, "max-concurrent", maxConcurrent);
            // What the gateway will make of the line, checked now rather than at its next start.
            ApiKey parsed = ClientKeys.byDigest(List.of(line.toString()), KeyLimits.UNLIMITED).values().iterator().next();
            if (keysFile == null) {
                spec.commandLine().getErr().println("cocoon: " + parsed.id() + " (account " + parsed.accountId()
                        + "); its line for the gateway's --api-keys-file:\n" + line);
            } else {
                append(keysFile, line.toString());
                spec.commandLine().getErr().println("cocoon: added " + parsed.id() + " (account " + parsed.accountId()
                        + ") to " + keysFile);
            }
            spec.commandLine().getOut().println(key);
            return 0;
        }

        private static void checkLimit(String flag, Long value) {
            if (value != null) {
                Cocoon.UsageException.atLeast(flag, value, 0);
            }
        }

        private static void appendLimit(StringBuilder line, String name, Long value) {
            if (value != null) {
                line.append(' ').append(name).append('=').append(value);
            }
        }

        private static void append(Path file, String line) throws IOException {
            if (!Files.exists(file)) {
                Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            }
            // A file whose last line has no newline would have this key glued to its end.
            String text = endsWithNewline(file) ? line + "\n" : "\n" + line + "\n";
            Files.writeString(file, text, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        }

        private static boolean endsWithNewline(Path file) throws IOException {
            try (RandomAccessFile read = new RandomAccessFile(file.toFile(), "r")) {
                if (read.length() == 0) {
                    return true;
                }
                read.seek(read.length() - 1);
                return read.read() == '\n';
            }
        }
    }
}
