package org.cocoonjvm.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.cocoonjvm.worker.payments.Earnings;
import org.cocoonjvm.worker.serve.WorkerNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code cocoon worker earnings}: a worker's lifetime earnings and payout history, read from its
 * payment directory with no worker running (or while one runs: every file there is replaced
 * atomically). The same JSON as the worker's {@code GET /earnings}.
 */
@Command(name = "earnings", mixinStandardHelpOptions = true,
        description = {"Prints a worker's lifetime earnings and payout history as JSON, read from its --payment-dir: "
                + "tokens served, nanoTON earned in signed states and paid out on chain, and each channel it was ever "
                + "paid on (open, quarantined or closed). Needs no running worker; a running one shows the same at "
                + "GET /earnings.",
                "Tokens are as last saved: every " + WorkerNode.TOKEN_SAVE_MS / 1000 + " s while the worker runs, "
                        + "and at its stop."})
final class WorkerEarningsCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--payment-dir", required = true, paramLabel = "DIR", description = "The worker's --payment-dir.")
    Path paymentDir;

    @Override
    public Integer call() throws IOException {
        Earnings earnings;
        try {
            earnings = Earnings.read(paymentDir);
        } catch (IllegalStateException unusable) {
            throw new Cocoon.StartFailure(unusable.getMessage(), unusable);
        } catch (UncheckedIOException unreadable) {
            throw oneLine(unreadable);
        }
        spec.commandLine().getOut().println(earnings.toJson().encodePrettily());
        return 0;
    }

    /**
     * A payment file that cannot be read, for the launcher's one line: a file-system refusal
     * (permission denied, say) names the file itself; any other I/O error is said with what was being read.
     */
    static IOException oneLine(UncheckedIOException unreadable) {
        IOException cause = unreadable.getCause();
        if (cause instanceof FileSystemException && ((FileSystemException) cause).getFile() != null) {
            return cause;
        }
        return new FileSystemException(unreadable.getMessage() + ": " + cause.getMessage());
    }
}
