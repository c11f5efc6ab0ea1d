package org.cocoonjvm.launcher;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/** One {@code cocoon} command run in this JVM, as the launcher's main runs it, with what it printed. */
record CliRun(int exit, String out, String err) {
    static CliRun cocoon(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = Cocoon.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute(args);
        return new CliRun(exit, out.toString().strip(), err.toString().strip());
    }
}
