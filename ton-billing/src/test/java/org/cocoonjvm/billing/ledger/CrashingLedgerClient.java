package org.cocoonjvm.billing.ledger;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.util.SplittableRandom;
import org.cocoonjvm.billing.accounts.InsufficientBalanceException;
import org.cocoonjvm.billing.accounts.Reservation;

/**
 * The child process of {@link LedgerCrashContract}: a gateway's billing loop, run until it is
 * killed with SIGKILL. After every call the ledger acknowledged it appends a line to an
 * acknowledgement log, written straight to the file (no buffer a kill could lose), and before
 * every progress or settle it appends what it is about to ask for:
 * <pre>
 *   C ref amount     credited
 *   P id cost        recordProgress returned true
 *   I id cost        about to record progress or settle at cost (may or may not commit)
 *   S id charged     settle returned
 *   X id             release returned
 * </pre>
 * Arguments: JDBC URL, account id, random seed, log path, threads.
 */
public final class CrashingLedgerClient {
    private CrashingLedgerClient() {
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        String account = args[1];
        long seed = Long.parseLong(args[2]);
        int threads = Integer.parseInt(args[4]);
        try (JdbcAccountBook book = JdbcAccountBook.open(url, Clock.systemUTC(), threads);
             FileOutputStream log = new FileOutputStream(args[3], true)) {
            book.open(account);
            System.out.println("ready");
            System.out.flush();
            Thread[] workers = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                SplittableRandom random = new SplittableRandom(seed * 31 + t);
                String prefix = seed + "-" + t + "-";
                workers[t] = Thread.ofPlatform().start(() -> loop(book, account, random, prefix, log));
            }
            for (Thread worker : workers) {
                worker.join();
            }
        }
    }

    private static void loop(JdbcAccountBook book, String account, SplittableRandom random, String prefix, FileOutputStream log) {
        for (long round = 0; ; round++) {
            long amount = random.nextLong(1, 1_000);
            Reservation r;
            try {
                r = book.reserve(account, amount);
            } catch (InsufficientBalanceException e) {
                String ref = prefix + round;
                if (book.credit(account, 50_000, ref)) {
                    write(log, "C " + ref + " 50000");
                }
                continue;
            }
            long progress = 0;
            for (int step = random.nextInt(4); step > 0; step--) {
                progress += random.nextLong(0, amount / 3 + 1);
                write(log, "I " + r.id() + " " + progress);
                if (book.recordProgress(r, progress)) {
                    write(log, "P " + r.id() + " " + progress);
                }
            }
            if (random.nextInt(8) == 0) {
                write(log, "I " + r.id() + " " + progress);
                book.release(r);
                write(log, "X " + r.id());
            } else {
                long cost = progress + random.nextLong(0, amount / 2 + 1);
                write(log, "I " + r.id() + " " + cost);
                long charged = book.settle(r, cost).chargedNanoton();
                write(log, "S " + r.id() + " " + charged);
            }
        }
    }

    private static void write(FileOutputStream log, String line) {
        byte[] bytes = (line + "\n").getBytes(StandardCharsets.UTF_8);
        synchronized (log) {
            try {
                log.write(bytes);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
