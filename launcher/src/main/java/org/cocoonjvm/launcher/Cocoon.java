package org.cocoonjvm.launcher;

import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import org.cocoonjvm.worker.kernels.KernelException;
import org.cocoonjvm.worker.model.ModelFormatException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code ./cocoon}: the one entry point for running and operating Cocoon. */
@Command(name = "cocoon", mixinStandardHelpOptions = true, version = "cocoon 0.1.0",
        description = "Confidential AI inference: attested workers, a streaming gateway, per-token TON billing.",
        subcommands = {DemoCommand.class, GatewayCommand.class, WorkerCommand.class, ModelCommand.class,
                GenerateCommand.class, BenchCommand.class, AttestCommand.class, LoadCommand.class, KeyCommand.class})
public final class Cocoon {
    private static final Logger log = LoggerFactory.getLogger(Cocoon.class);

    public static void main(String[] args) {
        int code = commandLine().execute(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    /** The command line with its exit codes for failures: what {@link #main} runs, and tests run in-process. */
    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Cocoon());
        // picocli's own refusals (a value of the wrong type, an unknown or missing option) are one
        // line too, as ours are: its default prints the whole usage after it (audit K, K-6).
        cli.setParameterExceptionHandler((e, args) -> {
            CommandLine failed = e.getCommandLine();
            failed.getErr().println("cocoon: " + e.getMessage() + " (see: cocoon "
                    + failed.getCommandSpec().qualifiedName(" ").replaceFirst("^cocoon ?", "") + " --help)");
            return 2;
        });
        cli.setExecutionExceptionHandler((e, line, parsed) -> {
            if (e instanceof UsageException usage) {
                line.getErr().println("cocoon: " + usage.getMessage());
                return 2;
            }
            String failure = failureLine(e);
            if (failure != null) {
                // The operator's fix is in the message; the trace is for whoever debugs the launcher.
                log.debug("failed", e);
                line.getErr().println("cocoon: " + failure);
                return 1;
            }
            throw e;
        });
        return cli;
    }

    /**
     * The one line for a failure the operator can fix (a start that failed, a model file that is
     * missing or malformed, an engine out of memory, a path that cannot be written); null for a bug.
     */
    private static String failureLine(Exception e) {
        return switch (e) {
            case StartFailure f -> f.getMessage();
            case ModelFormatException f -> f.getMessage();
            case KernelException f -> f.getMessage();
            case NoSuchFileException f -> f.getFile() + ": no such file or directory";
            case AccessDeniedException f -> f.getFile() + ": permission denied";
            case FileAlreadyExistsException f -> f.getFile() + ": already exists";
            case FileSystemException f -> f.getMessage();
            default -> null;
        };
    }

    /**
     * The command could not start with what it was given (a port in use, an unreachable ledger):
     * one line naming what is wrong, exit code 1, the cause's trace at DEBUG.
     */
    static final class StartFailure extends RuntimeException {
        StartFailure(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** A bad combination of options, reported as one line and exit code 2. */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }

        /** Refuses {@code value} of {@code flag} below {@code least}, naming the flag and the bound. */
        static void atLeast(String flag, long value, long least) {
            if (value < least) {
                throw new UsageException(flag + " must be at least " + least + ", got " + value);
            }
        }

        /** Refuses {@code value} of {@code flag} outside {@code least..most}, naming the flag and the range. */
        static void checkRange(String flag, long value, long least, long most) {
            if (value < least || value > most) {
                throw new UsageException(flag + " must be between " + least + " and " + most + ", got " + value);
            }
        }
    }
}
