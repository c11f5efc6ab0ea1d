package org.cocoonjvm.attest.quote;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class QuoteParserTest {

  @ParameterizedTest
  @CsvSource({
    // quote, version, body type, trailing bytes after the signature data
    "dcap-qvl/tdx_quote, 4, TD_1_0, 70",
    "dcap-qvl/tdx-quote.hex, 4, TD_1_0, -1",
    "dcap-qvl/quote-from-tappd.hex, 4, TD_1_0, -1",
    "dcap-qvl/near_quote_hex.txt, 4, TD_1_0, -1",
    "go-tdx-guest/tdx_prod_quote_SPR_E4.dat, 4, TD_1_0, 39",
    "go-tdx-guest/cos-113-tdx-quote.dat, 4, TD_1_0, 3065",
    "cocoon/quote.dat, 4, TD_1_0, 70",
    "trustee/tdx_quote_4.dat, 4, TD_1_0, 0",
    "trustee/tdx_quote_6.dat, 4, TD_1_0, 70",
    "trustee/az-tdx-vtpm/td-quote.bin, 4, TD_1_0, 70",
    "intel-qvl-sampledata/tdx/quote.dat, 4, TD_1_0, 0",
    "dcap-qvl/tdx_quote_outdated, 5, TD_1_5, 0",
    "go-tdx-guest/quote_v5_sample.dat, 5, TD_1_5, 0",
    "trustee/tdx_quote_5.dat, 5, TD_1_5, 0",
    "dcap-qvl/sgx_quote, 3, SGX_ENCLAVE, 0",
    "intel-qvl-sampledata/sgx/quote.dat, 3, SGX_ENCLAVE, 0",
  })
  void parse_everyFixtureQuote_shouldSucceed(
      String file, int version, BodyType bodyType, int trailing) throws Exception {
    Quote q = QuoteParser.parse(Fixtures.quote(file));

    assertThat(q.version()).isEqualTo(version);
    assertThat(q.body().type()).isEqualTo(bodyType);
    assertThat(q.header().isTdx()).isEqualTo(bodyType != BodyType.SGX_ENCLAVE);
    assertThat(q.header().attestationKeyType()).isEqualTo(2);
    if (trailing >= 0) assertThat(q.trailingBytes()).isEqualTo(trailing);
    int descriptor = version == 5 ? 6 : 0;
    assertThat(q.signedBytes().length()).isEqualTo(48 + descriptor + bodyType.size());
    assertThat(q.signature().qeReport().raw().length()).isEqualTo(384);
    assertThat(q.signature().quoteSignature().length()).isEqualTo(64);
    assertThat(q.signature().attestationKey().length()).isEqualTo(64);
  }

  @ParameterizedTest
  @ValueSource(strings = {
    "dcap-qvl/tdx_quote", "dcap-qvl/sgx_quote", "dcap-qvl/tdx_quote_outdated",
    "go-tdx-guest/tdx_prod_quote_SPR_E4.dat", "cocoon/quote.dat",
  })
  void parse_realQuotes_carryNulTerminatedPemChainOfThreeCerts(String file) throws Exception {
    CertificationData cert = QuoteParser.parse(Fixtures.quote(file)).signature().certification();

    assertThat(cert.type()).isEqualTo(CertificationData.TYPE_PCK_CERT_CHAIN);
    String pem = cert.pemChain();
    assertThat(pem).doesNotContain("\0").endsWith("-----END CERTIFICATE-----\n");
    assertThat(pem.split("-----BEGIN CERTIFICATE-----", -1)).hasSize(4);
  }

  @Test
  void parse_dcapQvlTdxV4_shouldExposeKnownMeasurements() throws Exception {
    Quote q = QuoteParser.parse(Fixtures.quote("dcap-qvl/tdx_quote"));
    TdReportBody td = q.td();

    assertThat(td.mrTdHex()).isEqualTo("91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a"
        + "3520c942a604a407de03ae6dc5f87f27428b2538873118b7");
    assertThat(td.reportDataHex()).startsWith("9a9d48e7f6799642d3d1b34e1e5e1742");
    assertThat(td.tdAttributes()).isEqualTo(0x10000000L); // SEPT_VE_DISABLE only
    assertThat(td.debug()).isFalse();
    assertThat(td.teeTcbSvn2()).isEmpty();
    assertThat(q.header().qeVendorId().hex()).isEqualTo("939a7233f79c4ca9940a0db3957f0607");
    // Offsets from docs/reference/attestation.md §1 for this very quote.
    assertThat(q.signature().qeAuthData().length()).isEqualTo(32);
    assertThat(q.signedBytes().toByteArray())
        .isEqualTo(Arrays.copyOf(Fixtures.quote("dcap-qvl/tdx_quote"), 632));
  }

  @Test
  void parse_trusteeQuote4_shouldMatchTrusteeClaims() throws Exception {
    // Values from trustee/parse_tdx_claims_expected.json: a debug TD.
    TdReportBody td = QuoteParser.parse(Fixtures.quote("trustee/tdx_quote_4.dat")).td();

    assertThat(td.mrTdHex()).isEqualTo("705ee9381b8633a9fbe532b52345e8433343d2868959f578"
        + "89d84ca377c395b689cac1599ccea1b7d420483a9ce5f031");
    assertThat(td.rtmrHex(0)).isEqualTo("e940da7c2712d2790e2961e00484f4fa8e6f9eed71361655"
        + "ae22699476b14f9e63867eb41edd4b480fef0c59f496b288");
    assertThat(td.rtmrHex(1)).startsWith("559cfcf42716ed6c");
    assertThat(td.rtmr(2).isAllZero()).isTrue();
    assertThat(td.reportDataHex()).isEqualTo("7c71fe2c86eff65a7cf8dbc22b3275689fd0464a267baced"
        + "1bf94fc1324656aeb755da3d44d098c0c87382f3a5f85b45c8a28fee1d3bdb38342bf96671501429");
    assertThat(td.debug()).isTrue();
    assertThat(td.xfam()).isEqualTo(0x0000_0000_0006_42e7L);
  }

  @Test
  void parse_tdxV5_shouldExposeTd15Fields() throws Exception {
    TdReportBody td = QuoteParser.parse(Fixtures.quote("dcap-qvl/tdx_quote_outdated")).td();

    assertThat(td.type()).isEqualTo(BodyType.TD_1_5);
    assertThat(td.teeTcbSvn().hex()).isEqualTo("07010300000000000000000000000000");
    assertThat(td.teeTcbSvn2()).hasValueSatisfying(
        v -> assertThat(v.hex()).isEqualTo("0d010300000000000000000000000000"));
    assertThat(td.mrServiceTd()).hasValueSatisfying(v -> assertThat(v.isAllZero()).isTrue());
    assertThat(td.mrTdHex()).startsWith("273828c46252fcbd");
  }

  @Test
  void parse_sgxV3_shouldExposeEnclaveReport() throws Exception {
    Quote q = QuoteParser.parse(Fixtures.quote("dcap-qvl/sgx_quote"));
    EnclaveReportBody e = q.enclave();

    assertThat(q.header().teeType()).isEqualTo(QuoteHeader.TEE_SGX);
    assertThat(e.mrEnclave().hex())
        .isEqualTo("33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb");
    assertThat(e.mrSigner().hex())
        .isEqualTo("815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6");
    assertThat(e.isvProdId()).isZero();
    assertThat(e.isvSvn()).isZero();
    assertThat(q.signedBytes().length()).isEqualTo(432);
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 47, 48, 200, 631, 632, 635, 700, 1000, 1253, 3000, 4935})
  void parse_truncated_shouldThrowTruncated(int length) {
    byte[] q = Arrays.copyOf(Fixtures.quote("dcap-qvl/tdx_quote"), length);

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .isInstanceOfSatisfying(QuoteFormatException.class,
            e -> assertThat(e.code()).isEqualTo("truncated"));
  }

  @Test
  void parse_truncated_messageNamesFieldOffsetAndSizes() {
    byte[] q = Arrays.copyOf(Fixtures.quote("dcap-qvl/tdx_quote"), 100);

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .isInstanceOfSatisfying(QuoteFormatException.class, e -> {
          assertThat(e.field()).isEqualTo("body");
          assertThat(e.offset()).isEqualTo(48);
          assertThat(e.getMessage()).contains("584").contains("52");
        });
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 3, 6})
  void parse_wrongVersion_shouldThrowUnsupportedVersion(int version) {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote");
    q[0] = (byte) version;

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .isInstanceOfSatisfying(QuoteFormatException.class, e -> {
          assertThat(e.code()).isEqualTo("unsupported_version");
          assertThat(e.getMessage()).contains("header.version").contains("got " + version);
        });
  }

  @Test
  void parse_unknownTeeType_shouldThrow() {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote");
    q[4] = (byte) 0x82;

    assertThatThrownBy(() -> QuoteParser.parse(q)).hasMessageContaining("0x82")
        .extracting(e -> ((QuoteFormatException) e).code()).isEqualTo("unsupported_tee_type");
  }

  @Test
  void parse_unknownKeyType_shouldThrow() {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote");
    q[2] = 3;

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .extracting(e -> ((QuoteFormatException) e).code()).isEqualTo("unsupported_key_type");
  }

  @Test
  void parse_wrongQeVendor_shouldThrow() {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote");
    q[12] ^= 1;

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .extracting(e -> ((QuoteFormatException) e).code()).isEqualTo("bad_qe_vendor");
  }

  @Test
  void parse_v5UnknownBodyType_shouldThrow() {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote_outdated");
    q[48] = 4;

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .extracting(e -> ((QuoteFormatException) e).code()).isEqualTo("unsupported_body_type");
  }

  @Test
  void parse_v5BodySizeDisagreeingWithType_shouldThrowBadLength() {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote_outdated");
    q[48] = 2; // TD 1.0 declared, but size says 648

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .extracting(e -> ((QuoteFormatException) e).code()).isEqualTo("bad_length");
  }

  @Test
  void parse_innerLengthOverrunningItsContainer_shouldThrowBadLength() {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote");
    q[1254] = (byte) 0xff; // PCK cert data size (offset 1254) now exceeds the type-6 container

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .extracting(e -> ((QuoteFormatException) e).code()).isEqualTo("bad_length");
  }

  @Test
  void parse_outerCertTypeNot6_shouldThrow() {
    byte[] q = Fixtures.quote("dcap-qvl/tdx_quote");
    q[764] = 5;

    assertThatThrownBy(() -> QuoteParser.parse(q))
        .extracting(e -> ((QuoteFormatException) e).code()).isEqualTo("unsupported_cert_type");
  }

  @Test
  void parse_trailingZeroPadding_shouldBeAccepted() throws Exception {
    byte[] exact = Arrays.copyOf(Fixtures.quote("dcap-qvl/tdx_quote"), 4936);
    byte[] padded = Arrays.copyOf(exact, exact.length + 512);

    Quote a = QuoteParser.parse(exact);
    Quote b = QuoteParser.parse(padded);

    assertThat(a.trailingBytes()).isZero();
    assertThat(b.trailingBytes()).isEqualTo(512);
    assertThat(b.signedBytes()).isEqualTo(a.signedBytes());
    assertThat(b.td().mrTd()).isEqualTo(a.td().mrTd());
  }

  @Test
  void pemChain_withAndWithoutTrailingNul_shouldBeTheSameText() throws Exception {
    Quote withNul = QuoteParser.parse(Fixtures.quote("dcap-qvl/tdx_quote"));
    Blob data = withNul.signature().certification().data();
    assertThat(data.byteAt(data.length() - 1)).isZero();

    byte[] stripped = Arrays.copyOf(data.toByteArray(), data.length() - 1);
    String pem = new CertificationData(5, Blob.copyOf(stripped)).pemChain();

    assertThat(withNul.signature().certification().pemChain()).isEqualTo(pem);
  }

  @Test
  void pemChain_onNonPemType_shouldRefuse() {
    CertificationData ppid = new CertificationData(1, Blob.copyOf(new byte[8]));

    assertThatThrownBy(ppid::pemChain).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void parse_inputMutatedAfterwards_shouldNotChangeQuote() throws Exception {
    byte[] raw = Fixtures.quote("dcap-qvl/tdx_quote");
    Quote q = QuoteParser.parse(raw);
    String before = q.td().mrTdHex();

    Arrays.fill(raw, (byte) 0);

    assertThat(q.td().mrTdHex()).isEqualTo(before);
    assertThat(HexFormat.of().formatHex(q.td().mrTd().toByteArray())).isEqualTo(before);
  }
}
