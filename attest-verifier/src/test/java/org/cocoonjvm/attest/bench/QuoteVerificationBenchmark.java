package org.cocoonjvm.attest.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.dcap.CollateralCache;
import org.cocoonjvm.attest.dcap.CollateralKey;
import org.cocoonjvm.attest.dcap.CollateralVerifier;
import org.cocoonjvm.attest.dcap.OfflineCollateralSource;
import org.cocoonjvm.attest.dcap.QuoteSignatureVerifier;
import org.cocoonjvm.attest.dcap.TcbMatcher;
import org.cocoonjvm.attest.dcap.TcbStatus;
import org.cocoonjvm.attest.dcap.TcbVerdict;
import org.cocoonjvm.attest.dcap.VerifiedSignatures;
import org.cocoonjvm.attest.quote.QuoteParser;

/**
 * Time to verify one TDX quote end to end (parse, PCK chain, QE report and quote signatures,
 * collateral checks, TCB match), side by side in one process, alternating rounds:
 *
 * <ul>
 *   <li><b>cached</b>: collateral from a {@link CollateralCache} (parsed and signature-checked once);
 *       per quote the cache lookup by FMSPC and the dates, revocation and FMSPC checks run;
 *   <li><b>parsed</b>: collateral parsed once but its signatures checked for every quote;
 *   <li><b>cold</b>: collateral JSON parsed and checked for every quote.
 * </ul>
 *
 * Not a test: run it as docs/benchmarks.md says. Args: fixtures dir, iterations per round, rounds.
 */
public final class QuoteVerificationBenchmark {
  static final Instant NOW = Instant.parse("2025-07-19T10:00:34Z");

  public static void main(String[] args) throws Exception {
    Path fixtures = Path.of(args.length > 0 ? args[0] : "../shared/attestation-fixtures");
    int iterations = args.length > 1 ? Integer.parseInt(args[1]) : 2000;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
    byte[] quote = Files.readAllBytes(fixtures.resolve("dcap-qvl/tdx_quote"));
    String collateralJson = Files.readString(fixtures.resolve("dcap-qvl/tdx_quote_collateral.json"));
    X509Certificate root;
    try (var in = Files.newInputStream(fixtures.resolve("dcap-qvl/TrustedRootCA.der"))) {
      root = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
    Clock clock = Clock.fixed(NOW, ZoneOffset.UTC);
    QuoteSignatureVerifier signatures = QuoteSignatureVerifier.create(root, clock);
    CollateralVerifier collateral = CollateralVerifier.create(root.getPublicKey(), clock);
    Collateral parsed = Collateral.parse(collateralJson);
    CollateralCache cache = new CollateralCache(OfflineCollateralSource.of(List.of(collateralJson)), collateral, clock);

    Step cached = () -> {
      VerifiedSignatures sigs = signatures.verify(QuoteParser.parse(quote));
      return TcbMatcher.match(collateral.verify(cache.get(CollateralKey.of(sigs)), sigs));
    };
    Step perQuote = () -> TcbMatcher.match(collateral.verify(parsed, signatures.verify(QuoteParser.parse(quote))));
    Step cold = () -> TcbMatcher.match(
        collateral.verify(Collateral.parse(collateralJson), signatures.verify(QuoteParser.parse(quote))));
    String[] names = {"cached", "parsed", "cold"};
    Step[] steps = {cached, perQuote, cold};
    for (Step s : steps) run(s, iterations); // warm-up
    long[][] samples = new long[steps.length][];
    for (int i = 0; i < steps.length; i++) samples[i] = new long[0];
    for (int r = 0; r < rounds; r++) {
      for (int i = 0; i < steps.length; i++) samples[i] = concat(samples[i], run(steps[i], iterations));
    }
    System.out.printf(Locale.ROOT, "cores=%d iterations=%d rounds=%d%n",
        Runtime.getRuntime().availableProcessors(), iterations, rounds);
    double cachedMean = mean(samples[0]);
    for (int i = 0; i < steps.length; i++) {
      long[] s = samples[i].clone();
      Arrays.sort(s);
      System.out.printf(Locale.ROOT, "%-7s mean %7.1f us  p50 %7.1f us  p99 %7.1f us  x%.2f of cached%n", names[i],
          mean(s) / 1e3, s[s.length / 2] / 1e3, s[(int) (s.length * 0.99)] / 1e3, mean(s) / cachedMean);
    }
  }

  interface Step {
    TcbVerdict run() throws Exception;
  }

  private static long[] run(Step step, int n) throws Exception {
    long[] out = new long[n];
    for (int i = 0; i < n; i++) {
      long t0 = System.nanoTime();
      TcbVerdict v = step.run();
      out[i] = System.nanoTime() - t0;
      if (v.status() != TcbStatus.UP_TO_DATE) throw new IllegalStateException("unexpected " + v);
    }
    return out;
  }

  private static long[] concat(long[] a, long[] b) {
    long[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  private static double mean(long[] s) {
    return Arrays.stream(s).average().orElseThrow();
  }
}
