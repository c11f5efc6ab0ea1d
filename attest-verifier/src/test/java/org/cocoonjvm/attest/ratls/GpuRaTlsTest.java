package org.cocoonjvm.attest.ratls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.cocoonjvm.attest.ratls.RaTlsHandshakeTest.CLOCK;
import static org.cocoonjvm.attest.ratls.RaTlsHandshakeTest.TEE;
import static org.cocoonjvm.attest.ratls.RaTlsHandshakeTest.await;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.bouncycastle.asn1.ASN1OctetString;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.CollateralSource;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.nvidia.GpuEvidenceVerifier;
import org.cocoonjvm.attest.nvidia.GpuNonce;
import org.cocoonjvm.attest.nvidia.GpuVerificationException;
import org.cocoonjvm.attest.nvidia.RimVerifier;
import org.cocoonjvm.attest.nvidia.TestGpuDevice;
import org.cocoonjvm.attest.policy.AllowList;
import org.cocoonjvm.attest.policy.GpuPolicy;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.quote.Fixtures;
import org.cocoonjvm.attest.quote.NeedsFixtures;
import org.cocoonjvm.attest.ratls.RaTlsException.Reason;
import org.cocoonjvm.attest.tee.QuoteSourceException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GPU evidence bound into RA-TLS: dev-TEE certificates carrying evidence from a {@link TestGpuDevice}
 * (the real sample evidence, its nonce replaced by the certificate key's and re-signed by a test
 * device chain whose root the verifier pins in place of NVIDIA's).
 */
class GpuRaTlsTest {
  static final GpuPolicy REQUIRED = new GpuPolicy(true, List.of(), AllowList.ANY);
  static TestGpuDevice device;

  @BeforeAll
  static void makeDevice() throws Exception {
    device = TestGpuDevice.create(CLOCK.instant());
  }

  /**
   * Evidence for the certificate's own key, as a worker with a GPU produces it. It reads the sample
   * from the fixtures inside {@link RaTlsIdentity}, which wraps what that throws: tests that make
   * an identity with it are {@link NeedsFixtures}.
   */
  static RaTlsIdentity.GpuEvidence fromDevice() {
    return key -> {
      try {
        return Optional.of(new GpuEvidenceExtension(device.sampleWithNonce(GpuNonce.forTlsPublicKey(key)),
            device.chainPem()).encode());
      } catch (Exception e) {
        throw new java.io.IOException(e);
      }
    };
  }

  static RaTlsIdentity identity(RaTlsIdentity.GpuEvidence gpu) throws QuoteSourceException {
    return RaTlsIdentity.create(TEE, CLOCK, RaTlsIdentity.DEFAULT_VALIDITY, gpu, NodeConfig.NONE);
  }

  static RaTlsVerifier verifier(GpuPolicy gpu) {
    NvidiaGpuCheck check = new NvidiaGpuCheck(gpu, GpuEvidenceVerifier.create(device.rootKey(), CLOCK), RimVerifier.create(CLOCK));
    return new RaTlsVerifier(AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), CLOCK),
        CollateralSource.fixed(TEE.collateral()), RaTlsHandshakeTest.ONLY_DEFAULT_MRTD.withGpu(gpu), Duration.ofHours(1), check);
  }

  static RaTlsException refusal(RaTlsVerifier v, RaTlsIdentity id) {
    try {
      v.verify(new X509Certificate[] {id.certificate()});
    } catch (RaTlsException e) {
      return e;
    }
    throw new AssertionError("accepted");
  }

  static String gpuCode(RaTlsException e) {
    assertThat(e.reason()).isEqualTo(Reason.GPU_EVIDENCE_REJECTED);
    return ((GpuVerificationException) e.getCause()).code();
  }

  @Test
  @NeedsFixtures
  void evidenceForTheCertificateKey_isVerified() throws Exception {
    RaTlsPeer peer = verifier(REQUIRED).verify(new X509Certificate[] {identity(fromDevice()).certificate()});
    GpuVerdict gpu = peer.gpu().orElseThrow();
    assertThat(gpu.fwidHex()).isEqualTo(TestGpuDevice.EVIDENCE_FWID);
    assertThat(gpu.driverVersion()).isNotEmpty();
    assertThat(gpu.measurementsCompared()).isEmpty();
  }

  @Test
  @NeedsFixtures
  void evidenceTakenForAnotherKey_isANonceMismatch() throws Exception {
    byte[] otherKey = RaTlsIdentity.rawEd25519(KeyPairGenerator.getInstance("Ed25519").generateKeyPair().getPublic()).orElseThrow();
    RaTlsIdentity.GpuEvidence replayed = key -> fromDevice().evidenceFor(otherKey);
    assertThat(gpuCode(refusal(verifier(REQUIRED), identity(replayed)))).isEqualTo("nonce_mismatch");
  }

  @Test
  @NeedsFixtures
  void tamperedMeasurements_breakTheSpdmSignature() throws Exception {
    RaTlsIdentity.GpuEvidence tampered = key -> {
      GpuEvidenceExtension good = GpuEvidenceExtension.decode(fromDevice().evidenceFor(key).orElseThrow());
      byte[] ev = good.evidence();
      ev[60] ^= 1; // inside the first measurement value, well within the signed bytes
      return Optional.of(new GpuEvidenceExtension(ev, good.certificateChainPem()).encode());
    };
    assertThat(gpuCode(refusal(verifier(REQUIRED), identity(tampered)))).isEqualTo("evidence_signature_invalid");
  }

  @Test
  void requiredButAbsent_isRefused_optionalAndAbsent_isAccepted() throws Exception {
    RaTlsIdentity plain = identity(null);
    assertThat(refusal(verifier(REQUIRED), plain).reason()).isEqualTo(Reason.GPU_EVIDENCE_MISSING);
    assertThat(verifier(GpuPolicy.OPTIONAL).verify(new X509Certificate[] {plain.certificate()}).gpu()).isEmpty();
  }

  @Test
  void evidencePresentButInvalid_isRefusedEvenWhenNotRequired() throws Exception {
    RaTlsIdentity.GpuEvidence garbage = key -> Optional.of("{\"format\":\"other\"}".getBytes(StandardCharsets.UTF_8));
    RaTlsException e = refusal(verifier(GpuPolicy.OPTIONAL), identity(garbage));
    assertThat(e.reason()).isEqualTo(Reason.GPU_EVIDENCE_REJECTED);
    assertThat(e.getMessage()).contains("malformed extension");
  }

  @Test
  @NeedsFixtures
  void theDefaultVerifierPinsNvidiasRoot_soATestDeviceIsNotTrusted() throws Exception {
    RaTlsVerifier pinned = new RaTlsVerifier(
        AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), CLOCK),
        CollateralSource.fixed(TEE.collateral()), RaTlsHandshakeTest.ONLY_DEFAULT_MRTD.withGpu(REQUIRED));
    assertThat(gpuCode(refusal(pinned, identity(fromDevice())))).isEqualTo("device_root_not_pinned");
  }

  @Test
  @NeedsFixtures
  void driverVersionOutsideThePolicy_isRefused() throws Exception {
    RaTlsException e = refusal(verifier(new GpuPolicy(true, List.of(), AllowList.of(Set.of("1.2.3")))), identity(fromDevice()));
    assertThat(e.reason()).isEqualTo(Reason.GPU_EVIDENCE_REJECTED);
    assertThat(e.getMessage()).contains("not in gpu.driver_versions");
  }

  @Test
  @NeedsFixtures
  void withRims_theRimsForTheEvidencesVersionsAreNeeded() throws Exception {
    // NVIDIA's published test RIMs (signers valid 2023-06 → 2025-06) are for other versions than the sample's.
    byte[] driverRim = Files.readAllBytes(Fixtures.dir().resolve("nvtrust/rims/Driver_RIM_test_no_gpu.swidtag"));
    byte[] vbiosRim = Files.readAllBytes(Fixtures.dir().resolve("nvtrust/rims/1010_0200_882_96005E0001_PROD.swidtag"));
    GpuPolicy withRims = new GpuPolicy(true, List.of(driverRim, vbiosRim), AllowList.ANY);
    RimVerifier rimsIn2024 = RimVerifier.create(Clock.fixed(Instant.parse("2024-06-01T00:00:00Z"), ZoneOffset.UTC));
    RaTlsVerifier v = new RaTlsVerifier(
        AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(TEE.root())), CLOCK),
        CollateralSource.fixed(TEE.collateral()), RaTlsHandshakeTest.ONLY_DEFAULT_MRTD.withGpu(withRims), Duration.ofHours(1),
        new NvidiaGpuCheck(withRims, GpuEvidenceVerifier.create(device.rootKey(), CLOCK), rimsIn2024));
    RaTlsException e = refusal(v, identity(fromDevice()));
    assertThat(e.reason()).isEqualTo(Reason.GPU_EVIDENCE_REJECTED);
    assertThat(e.getMessage()).contains("rim_version_mismatch: no configured RIM is for driver version");
    // At the verifier's own clock those RIM signers have expired: the RIMs are checked per handshake.
    assertThat(gpuCode(refusal(verifier(withRims), identity(fromDevice())))).isEqualTo("rim_chain_expired");
  }

  @Test
  void gpuPolicyJson_requiresKnownKeysAndReadsRimFiles(@TempDir Path dir) throws Exception {
    Path rim = dir.resolve("driver.swidtag");
    Files.writeString(rim, "<SoftwareIdentity/>");
    Policy p = Policy.parse("{\"gpu\":{\"required\":true,\"rims\":[\"" + rim + "\"],\"driver_versions\":[\"550.90.07\"]}}",
        Policy.STRICT);
    assertThat(p.gpu().required()).isTrue();
    assertThat(p.gpu().rims()).singleElement().satisfies(b -> assertThat(new String(b, StandardCharsets.UTF_8)).isEqualTo("<SoftwareIdentity/>"));
    assertThat(p.gpu().driverVersions().allows("550.90.07")).isTrue();
    assertThat(Policy.STRICT.gpu()).isEqualTo(GpuPolicy.OPTIONAL);
    assertThatThrownBy(() -> Policy.parse("{\"gpu\":{\"requird\":true}}", Policy.STRICT)).hasMessageContaining("gpu.requird");
    assertThatThrownBy(() -> Policy.parse("{\"gpu\":{\"rims\":[\"" + dir.resolve("absent") + "\"]}}", Policy.STRICT))
        .hasMessageContaining("cannot read");
  }

  @Test
  void command_getsTheKeysNonce_andItsJsonBecomesTheExtension(@TempDir Path dir) throws Exception {
    Path seen = dir.resolve("nonce");
    Path script = dir.resolve("evidence.sh");
    String evidenceHex = HexFormat.of().formatHex(device.sampleWithNonce(new byte[32]));
    Files.writeString(script, "printf '%s' \"$1\" > " + seen + "\n"
        + "printf '%s' '" + new JsonObject().put("evidence", evidenceHex)
            .put("certificate_chain", new String(device.chainPem(), StandardCharsets.US_ASCII)).encode() + "'\n");
    RaTlsIdentity id = identity(new CommandGpuEvidence("sh " + script, Duration.ofSeconds(30)));
    byte[] key = RaTlsIdentity.rawEd25519(id.certificate().getPublicKey()).orElseThrow();
    assertThat(Files.readString(seen)).isEqualTo(HexFormat.of().formatHex(GpuNonce.forTlsPublicKey(key)));
    byte[] ext = ASN1OctetString.getInstance(id.certificate().getExtensionValue(RaTlsIdentity.GPU_EVIDENCE_OID)).getOctets();
    assertThat(HexFormat.of().formatHex(GpuEvidenceExtension.decode(ext).evidence())).isEqualTo(evidenceHex);
    assertThat(id.certificate().getCriticalExtensionOIDs()).doesNotContain(RaTlsIdentity.GPU_EVIDENCE_OID);
    assertThat(id.publicEvidence("dev").getJsonObject("gpu_evidence").getString("format")).isEqualTo(GpuEvidenceExtension.FORMAT);
    // This script's evidence asked for a zero nonce, not the key's: a verifier sees through it.
    assertThat(gpuCode(refusal(verifier(REQUIRED), id))).isEqualTo("nonce_mismatch");
  }

  @Test
  void failingCommand_failsTheCertificate() {
    assertThatThrownBy(() -> identity(new CommandGpuEvidence("exit 3;", Duration.ofSeconds(30))))
        .isInstanceOf(QuoteSourceException.class).hasMessageContaining("exited 3");
  }

  @Test
  @NeedsFixtures
  void mutualRaTls_aGpuRequiringServerAcceptsAWorkerWithEvidenceAndRefusesOneWithout() throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      List<RaTlsTrustManager.Outcome> serverSaw = new CopyOnWriteArrayList<>();
      HttpServerOptions opts = RaTlsVertx.server(new HttpServerOptions().setHost("127.0.0.1").setPort(0),
          new RaTlsKeyManager(identity(null)), new RaTlsTrustManager(verifier(REQUIRED), serverSaw::add));
      int port = await(vertx.createHttpServer(opts).requestHandler(req -> req.response().end("ok")).listen()).actualPort();
      assertThat(get(vertx, port, identity(fromDevice()))).isEqualTo("ok");
      assertThat(serverSaw).singleElement().satisfies(o -> assertThat(o.peer().gpu()).isPresent());
      assertThatThrownBy(() -> get(vertx, port, identity(null))).isNotNull();
      assertThat(serverSaw).hasSize(2);
      assertThat(serverSaw.get(1).refusal().reason()).isEqualTo(Reason.GPU_EVIDENCE_MISSING);
    } finally {
      await(vertx.close());
    }
  }

  /** One request presenting {@code client}; the client checks the server with GPU evidence optional. */
  static String get(Vertx vertx, int port, RaTlsIdentity client) throws Exception {
    HttpClient http = vertx.createHttpClient(RaTlsVertx.client(new HttpClientOptions(), new RaTlsKeyManager(client),
        new RaTlsTrustManager(verifier(GpuPolicy.OPTIONAL), o -> {})));
    try {
      return await(ClientChains.onContext(vertx, () -> http.request(HttpMethod.GET, port, "127.0.0.1", "/")
          .compose(r -> r.send().compose(s -> s.body())).map(b -> b.toString())));
    } finally {
      await(http.close());
    }
  }
}
