package org.cocoonjvm.billing.bench;

import com.iwebpp.crypto.TweetNaclFast;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.security.SecureRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.math.ec.rfc8032.Ed25519;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherVerifier;
import org.cocoonjvm.billing.pricing.Multipliers;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.RunningFee;
import org.ton.ton4j.utils.Utils;

/**
 * One thread, so each figure is per core: (1) the per-token metering path both the gateway and
 * the worker run (a running fee plus the shared per-channel counter); (2) signing a state (cell,
 * hash, Ed25519, BOC) with BouncyCastle and, for the ratio, with the TweetNaCl that ton4j uses;
 * (3) verifying one as the worker does (parse, canonical check, rules, signature), and the
 * signature alone with BouncyCastle and with {@code FixedKeyEd25519}, in alternating rounds. Each measure
 * runs ROUNDS timed rounds after a warm-up; the median round is reported, per second of the
 * thread's CPU time: on a machine shared with other builds, wall time says more about the
 * neighbours than about the code. Not a test: see docs/benchmarks.md.
 */
public final class ChannelBenchmark {
    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 2;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        SecureRandom random = new SecureRandom();
        PaymentKeyPair key = PaymentKeyPair.generate(random);
        ChannelTerms terms = new ChannelTerms(ChannelId.random(random), key.publicKey(), Long.MAX_VALUE);

        PriceSchedule schedule = new PriceSchedule("m", 2, 1, new Multipliers(10_000, 5_000, 12_000, 10_000), 1500, 4000);
        AtomicLong channelEarned = new AtomicLong();
        report("metering, tokens/s", seconds, rounds, new Op() {
            RunningFee fee = newFee();
            long counted;
            long n;

            RunningFee newFee() {
                RunningFee f = new RunningFee(schedule, 1500);
                f.prompt(200);
                return f;
            }

            @Override
            public void run() {
                if (++n % 2000 == 0) {   // a request of 2,000 tokens, then the next
                    fee = newFee();
                    counted = 0;
                }
                long total = fee.addCompletion(1);
                channelEarned.addAndGet(total - counted);
                counted = total;
            }
        });

        ChannelPayer payer = new ChannelPayer(terms, key, SemiChannelBody.INITIAL);
        long[] sent = {0};
        report("sign (BouncyCastle), states/s", seconds, rounds, () -> payer.pay(sent[0] += 7));
        SemiChannelState sample = new SemiChannelState(terms.channelId(), new SemiChannelBody(5, 1234));
        report("  of which: build + hash the state cell, /s", seconds, rounds, () -> sample.toCell().hash());
        SignedSemiChannel signedSample = key.sign(sample);
        report("  of which: parse the BOC, /s", seconds, rounds, () -> SignedSemiChannel.parse(signedSample.boc()));
        byte[] hash = sample.toCell().hash();
        byte[] seed = key.seed();
        byte[] publicKey = key.publicKey().toBytes();
        byte[] signature = new byte[64];
        report("  of which: Ed25519 sign (BouncyCastle), /s", seconds, rounds,
                () -> Ed25519.sign(seed, 0, publicKey, 0, hash, 0, hash.length, signature, 0));

        TweetNaclFast.Signature.KeyPair nacl = Utils.generateSignatureKeyPairFromSeed(key.seed());
        TweetNaclFast.Signature signer = new TweetNaclFast.Signature(nacl.getPublicKey(), nacl.getSecretKey());
        long[] seqno = {0};
        report("sign (TweetNaCl, as ton4j's PaymentChannel), states/s", seconds, rounds, () -> {
            seqno[0]++;
            signer.detached(new SemiChannelState(terms.channelId(), new SemiChannelBody(seqno[0] % 1_000_000, seqno[0]))
                    .toCell().hash());
        });

        int pool = 4096;
        byte[][] bocs = new byte[pool][];
        ChannelPayer source = new ChannelPayer(terms, key, SemiChannelBody.INITIAL);
        for (int i = 0; i < pool; i++) {
            bocs[i] = source.pay(i * 3L).boc();
        }
        SignedSemiChannel before = key.sign(new SemiChannelState(terms.channelId(), SemiChannelBody.INITIAL));
        int[] next = {0};
        report("verify (parse + rules + signature), states/s", seconds, rounds,
                () -> VoucherVerifier.accept(terms, before, bocs[next[0]++ % pool]));
        // The signature alone, both ways, rounds alternating so that a busy neighbour hurts both alike.
        Ed25519.PublicPoint decoded = Ed25519.validatePublicKeyFullExport(publicKey, 0);
        compare(seconds, rounds,
                "  of which: Ed25519 verify, BouncyCastle (decoded key), /s",
                () -> Ed25519.verify(signature, 0, decoded, hash, 0, hash.length),
                "  of which: Ed25519 verify, FixedKeyEd25519 (key tables), /s",
                () -> key.publicKey().verifies(signature, hash));
        // What the gateway pays once per worker: a key never seen, validated, then one verification without its table.
        report("verify under a new key (PaymentPublicKey.of + 1st verify), /s", seconds, rounds,
                () -> PaymentPublicKey.of(publicKey).verifies(signature, hash));
    }

    private interface Op {
        void run();
    }

    private static void report(String what, double seconds, int rounds, Op op) {
        timed(op, seconds / 2);  // warm-up
        double[] rates = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            rates[r] = timed(op, seconds);
        }
        print(what, rates);
    }

    /** Two measures in alternating rounds, then their ratio (second / first) by medians. */
    private static void compare(double seconds, int rounds, String firstName, Op first, String secondName, Op second) {
        timed(first, seconds / 2);
        timed(second, seconds / 2);
        double[] a = new double[rounds];
        double[] b = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            a[r] = timed(first, seconds);
            b[r] = timed(second, seconds);
        }
        double firstMedian = print(firstName, a);
        double secondMedian = print(secondName, b);
        System.out.printf("%-58s %.2fx%n", "  ratio of the medians, second / first", secondMedian / firstMedian);
    }

    /** Prints the median and every round; returns the median. */
    private static double print(String what, double[] rates) {
        double[] sorted = rates.clone();
        java.util.Arrays.sort(sorted);
        StringBuilder all = new StringBuilder();
        for (double rate : rates) {
            all.append(all.isEmpty() ? "" : ", ").append(String.format("%,.0f", rate));
        }
        System.out.printf("%-58s median %,14.0f   rounds: %s%n", what, sorted[rates.length / 2], all);
        return sorted[rates.length / 2];
    }

    /** Operations per second of this thread's CPU time, run for {@code seconds} of wall time. */
    private static double timed(Op op, double seconds) {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        long count = 0;
        long cpuStart = threads.getCurrentThreadCpuTime();
        do {
            for (int i = 0; i < 256; i++) {
                op.run();
            }
            count += 256;
        } while (System.nanoTime() < deadline);
        return count / ((threads.getCurrentThreadCpuTime() - cpuStart) / 1e9);
    }
}
