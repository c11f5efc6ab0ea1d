package org.cocoonjvm.attest.bench;

import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.Arrays;
import java.util.List;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.ratls.RaTlsIdentity;
import org.cocoonjvm.attest.ratls.RaTlsVerifier;
import org.cocoonjvm.attest.tee.DevTee;

/**
 * RA-TLS peer certificate verification, cold (empty cache: full DCAP chain, collateral, TCB and
 * policy) vs cached (certificate checks plus a cache hit), on a dev-TEE certificate, which runs
 * the same DCAP code as an Intel quote. Args: WARMUP ITERATIONS. Prints p50/p99 in microseconds.
 */
public final class RaTlsVerifyBenchmark {
  public static void main(String[] args) throws Exception {
    int warmup = args.length > 0 ? Integer.parseInt(args[0]) : 500;
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
    Clock clock = Clock.systemUTC();
    DevTee tee = DevTee.generate(clock);
    X509Certificate[] chain = {RaTlsIdentity.create(tee, clock).certificate()};
    AttestationVerifier av = AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(tee.root())), clock);
    Policy policy = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);
    CollateralSource collateral = CollateralSource.fixed(tee.collateral());

    long[] cold = new long[n];
    for (int i = -warmup; i < n; i++) {
      RaTlsVerifier fresh = new RaTlsVerifier(av, collateral, policy);
      long t0 = System.nanoTime();
      if (fresh.verify(chain).cached()) throw new IllegalStateException("fresh verifier hit its cache");
      long dt = System.nanoTime() - t0;
      if (i >= 0) cold[i] = dt;
    }
    RaTlsVerifier shared = new RaTlsVerifier(av, collateral, policy);
    shared.verify(chain);
    long[] warm = new long[n];
    for (int i = -warmup; i < n; i++) {
      long t0 = System.nanoTime();
      if (!shared.verify(chain).cached()) throw new IllegalStateException("expected a cache hit");
      long dt = System.nanoTime() - t0;
      if (i >= 0) warm[i] = dt;
    }
    System.out.printf("cold   p50 %8.1f us  p99 %8.1f us%n", pct(cold, 50), pct(cold, 99));
    System.out.printf("cached p50 %8.1f us  p99 %8.1f us%n", pct(warm, 50), pct(warm, 99));
    System.out.printf("ratio p50 cold/cached %.1fx%n", pct(cold, 50) / pct(warm, 50));
  }

  private static double pct(long[] ns, int p) {
    long[] s = ns.clone();
    Arrays.sort(s);
    return s[Math.min(s.length - 1, (int) Math.ceil(p / 100.0 * s.length) - 1)] / 1000.0;
  }
}
