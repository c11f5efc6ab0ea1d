package org.cocoonjvm.launcher;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code ./cocoon}: the one entry point for running and operating Cocoon. */
@Command(name = "cocoon", mixinStandardHelpOptions = true, version = "cocoon 0.1.0",
        description = "Confidential AI inference: attested workers, a streaming gateway, per-token TON billing.",
        subcommands = {DemoCommand.class, GatewayCommand.class, WorkerCommand.class, ModelCommand.class,
                GenerateCommand.class, BenchCommand.class, AttestCommand.class, LoadCommand.class})
public final class Cocoon {
    public static void main(String[] args) {
        CommandLine cli = new CommandLine(new Cocoon());
        cli.setExecutionExceptionHandler((e, line, parsed) -> {
            if (e instanceof UsageException usage) {
                line.getErr().println("cocoon: " + usage.getMessage());
                return 2;
            }
            throw e;
        });
        int code = cli.execute(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    /** A bad combination of options, reported as one line and exit code 2. */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }

        /** Refuses {@code value} of {@code flag} outside {@code least..most}, naming the flag and the range. */
        static void checkRange(String flag, long value, long least, long most) {
            if (value < least || value > most) {
                throw new UsageException(flag + " must be between " + least + " and " + most + ", got " + value);
            }
        }
    }
}
