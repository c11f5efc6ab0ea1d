package org.cocoonjvm.billing.ed25519;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.bouncycastle.math.ec.rfc8032.Ed25519;

/**
 * How wide the signed digits of the two tables should be: {@link FixedKeyEd25519}'s verification
 * with B's table of width WB and the keys' of width WA, over one key and over KEYS keys in turn
 * (the tables then compete for the cache). One thread; rounds of the configurations alternate, so
 * a busy neighbour hurts them alike; the median round per second of the thread's CPU time is
 * reported, with each key table's size and build time. Not a test: see docs/benchmarks.md.
 *
 * <p>Arguments: SECONDS_PER_ROUND ROUNDS KEYS WB/WA...
 */
public final class Ed25519WidthBenchmark {
    private static final int MESSAGES = 64;

    public static void main(String[] args) {
        double seconds = Double.parseDouble(args[0]);
        int rounds = Integer.parseInt(args[1]);
        int keyCount = Integer.parseInt(args[2]);
        Random random = new Random(1);
        byte[][] messages = new byte[MESSAGES][32];
        for (byte[] message : messages) {
            random.nextBytes(message);
        }
        FixedKeyEd25519[] keys = new FixedKeyEd25519[keyCount];
        byte[][][] signatures = new byte[keyCount][MESSAGES][64];
        for (int k = 0; k < keyCount; k++) {
            byte[] seed = new byte[32];
            random.nextBytes(seed);
            byte[] pk = new byte[32];
            Ed25519.generatePublicKey(seed, 0, pk, 0);
            keys[k] = FixedKeyEd25519.of(pk);
            for (int m = 0; m < MESSAGES; m++) {
                Ed25519.sign(seed, 0, pk, 0, messages[m], 0, 32, signatures[k][m], 0);
            }
        }
        List<Config> configs = new ArrayList<>();
        for (int i = 3; i < args.length; i++) {
            String[] widths = args[i].split("/");
            configs.add(new Config(Integer.parseInt(widths[0]), Integer.parseInt(widths[1]), keys, rounds));
        }
        for (Config c : configs) {  // warm-up, which also settles the JIT before the build times below
            c.rate(signatures, messages, 1, seconds / 2);
        }
        for (Config c : configs) {
            c.timeBuild();
        }
        for (int r = 0; r < rounds; r++) {
            for (Config c : configs) {
                c.single[r] = c.rate(signatures, messages, 1, seconds);
                c.several[r] = c.rate(signatures, messages, keyCount, seconds);
            }
        }
        System.out.printf("%-7s %12s %12s %12s %14s %10s%n", "WB/WA", "1 key, /s", keyCount + " keys, /s", "additions",
                "key table, KiB", "build, ms");
        for (Config c : configs) {
            System.out.printf("%-7s %,12.0f %,12.0f %12d %,14d %10.1f%n", c.baseWidth + "/" + c.keyWidth, median(c.single),
                    median(c.several), c.base.windows + c.keyTables[0].windows,
                    FixedBaseTable.windowsFor(c.keyWidth) * (1 << (c.keyWidth - 1)) * ExtendedPoint.PRECOMPUTED_INTS * 4 / 1024,
                    c.buildMillis);
        }
    }

    private static final class Config {
        final int baseWidth;
        final int keyWidth;
        final FixedKeyEd25519[] keys;
        final FixedBaseTable base;
        final FixedBaseTable[] keyTables;
        final double[] single;
        final double[] several;
        double buildMillis;

        Config(int baseWidth, int keyWidth, FixedKeyEd25519[] keys, int rounds) {
            this.single = new double[rounds];
            this.several = new double[rounds];
            this.baseWidth = baseWidth;
            this.keyWidth = keyWidth;
            this.keys = keys;
            this.base = FixedBaseTable.of(FixedKeyEd25519.basePoint(), baseWidth);
            this.keyTables = new FixedBaseTable[keys.length];
            for (int k = 0; k < keys.length; k++) {
                keyTables[k] = FixedBaseTable.of(keys[k].point, keyWidth);
            }
        }

        void timeBuild() {
            long start = System.nanoTime();
            int builds = 10;
            for (int i = 0; i < builds; i++) {
                FixedBaseTable.of(keys[0].point, keyWidth);
            }
            buildMillis = (System.nanoTime() - start) / 1e6 / builds;
        }

        /** Verifications per CPU-second over the first {@code keyCount} keys in turn. */
        double rate(byte[][][] signatures, byte[][] messages, int keyCount, double seconds) {
            ThreadMXBean threads = ManagementFactory.getThreadMXBean();
            long deadline = System.nanoTime() + (long) (seconds * 1e9);
            long cpuStart = threads.getCurrentThreadCpuTime();
            long count = 0;
            do {
                for (int i = 0; i < 64; i++, count++) {
                    int k = (int) (count % keyCount);
                    int m = (int) ((count / keyCount) % MESSAGES);
                    if (!keys[k].verify(signatures[k][m], messages[m], base, keyTables[k])) {
                        throw new AssertionError("a valid signature failed with widths " + baseWidth + "/" + keyWidth);
                    }
                }
            } while (System.nanoTime() < deadline);
            return count / ((threads.getCurrentThreadCpuTime() - cpuStart) / 1e9);
        }
    }

    private static double median(double[] rates) {
        double[] sorted = rates.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
