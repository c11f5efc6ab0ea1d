package org.cocoonjvm.attest.nvidia;

import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.EVIDENCE_MALFORMED;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * NVIDIA GPU evidence: an SPDM 1.1 GET_MEASUREMENTS request (37 bytes) followed by the signed
 * MEASUREMENTS response (DMTF DSP0274), as NVML returns it and nvtrust / PPCIe store it.
 *
 * <p>Parsed strictly inside declared lengths: measurement blocks must fill the record exactly, the
 * declared block count must match, opaque TLVs must fill their area exactly and not repeat. The
 * 96-byte P-384 signature is located by those lengths, never as "the last 96 bytes": real evidence
 * (trustee's {@code hopper_coco_report1}) carries a trailing byte, which is counted in
 * {@link #trailingBytes()} and not signed.
 */
public final class SpdmEvidence {
  /** SPDM GET_MEASUREMENTS request: version, code, param1, param2, nonce[32], slot. */
  public static final int REQUEST_LENGTH = 37;
  public static final int NONCE_LENGTH = 32;
  public static final int SIGNATURE_LENGTH = 96;
  public static final int FWID_LENGTH = 48;

  /** Opaque field types NVIDIA defines; only those the verifier reads are named. */
  public static final int OPAQUE_DRIVER_VERSION = 3;
  public static final int OPAQUE_VBIOS_VERSION = 6;
  public static final int OPAQUE_NVDEC0_STATUS = 11;
  public static final int OPAQUE_FWID = 20;
  /** NVDEC0 status byte meaning the engine is disabled, so RIM index 35 is not measured. */
  public static final int NVDEC0_DISABLED = 0x55;

  private static final int SPDM_VERSION_1_1 = 0x11;
  private static final int GET_MEASUREMENTS = 0xE0;
  private static final int MEASUREMENTS = 0x60;
  private static final int SIGNATURE_REQUESTED = 0x01;
  private static final int DMTF_SPEC = 0x01;
  private static final HexFormat HEX = HexFormat.of();

  private final byte[] raw;
  private final int signedLength;
  private final List<MeasurementBlock> blocks;
  private final Map<Integer, byte[]> opaque;
  private final String driverVersion;
  private final String vbiosVersion;

  private SpdmEvidence(
      byte[] raw, int signedLength, List<MeasurementBlock> blocks, Map<Integer, byte[]> opaque,
      String driverVersion, String vbiosVersion) {
    this.raw = raw;
    this.signedLength = signedLength;
    this.blocks = blocks;
    this.opaque = opaque;
    this.driverVersion = driverVersion;
    this.vbiosVersion = vbiosVersion;
  }

  /** Parses request ‖ response; the input is copied. */
  public static SpdmEvidence parse(byte[] evidence) throws GpuVerificationException {
    byte[] b = evidence.clone();
    Reader r = new Reader(b);
    r.expectByte(SPDM_VERSION_1_1, "request SPDM version");
    r.expectByte(GET_MEASUREMENTS, "request code");
    int param1 = r.u8("request param1");
    if ((param1 & SIGNATURE_REQUESTED) == 0) {
      throw malformed("request does not ask for a signature", "param1 bit 0 set", hex8(param1));
    }
    r.skip(1 + NONCE_LENGTH + 1, "request operation, nonce and slot");

    r.expectByte(SPDM_VERSION_1_1, "response SPDM version");
    r.expectByte(MEASUREMENTS, "response code");
    r.skip(2, "response params");
    int declaredBlocks = r.u8("number of blocks");
    int recordLength = r.u24("measurement record length");
    int recordEnd = r.pos() + recordLength;
    r.require(recordLength, "measurement record");
    List<MeasurementBlock> blocks = new ArrayList<>();
    boolean[] seen = new boolean[256];
    while (r.pos() < recordEnd) {
      int index = r.u8("block index");
      int spec = r.u8("block measurement specification");
      int size = r.u16("block size");
      int blockEnd = r.pos() + size;
      if (blockEnd > recordEnd) {
        throw malformed("block " + index + " overruns the measurement record",
            "end <= " + recordEnd, String.valueOf(blockEnd));
      }
      if (spec != DMTF_SPEC) {
        throw malformed("block " + index + " is not a DMTF measurement", "spec 1", "spec " + spec);
      }
      if (seen[index]) throw malformed("block index repeats", "unique indexes", String.valueOf(index));
      seen[index] = true;
      int type = r.u8("value type");
      int valueSize = r.u16("value size");
      if (3 + valueSize != size) {
        throw malformed("block " + index + " value size does not fill the block",
            "value size " + (size - 3), String.valueOf(valueSize));
      }
      blocks.add(new MeasurementBlock(index, type, HEX.formatHex(r.bytes(valueSize, "value"))));
    }
    if (blocks.size() != declaredBlocks) {
      throw malformed("block count", declaredBlocks + " blocks", blocks.size() + " blocks");
    }
    r.skip(NONCE_LENGTH, "responder nonce");
    int opaqueLength = r.u16("opaque data length");
    int opaqueEnd = r.pos() + opaqueLength;
    r.require(opaqueLength, "opaque data");
    Map<Integer, byte[]> opaque = new LinkedHashMap<>();
    while (r.pos() < opaqueEnd) {
      int type = r.u16("opaque field type");
      int length = r.u16("opaque field length");
      if (r.pos() + length > opaqueEnd) {
        throw malformed("opaque field " + type + " overruns the opaque data",
            "end <= " + opaqueEnd, String.valueOf(r.pos() + length));
      }
      if (opaque.put(type, r.bytes(length, "opaque field")) != null) {
        throw malformed("opaque field type repeats", "unique types", String.valueOf(type));
      }
    }
    int signedLength = r.pos();
    r.require(SIGNATURE_LENGTH, "signature");
    String driver = nulTerminated(required(opaque, OPAQUE_DRIVER_VERSION, "driver version"));
    String vbios = vbiosVersion(required(opaque, OPAQUE_VBIOS_VERSION, "VBIOS version"));
    byte[] fwid = opaque.get(OPAQUE_FWID);
    if (fwid != null && fwid.length != FWID_LENGTH) {
      throw malformed("FWID length", FWID_LENGTH + " bytes", fwid.length + " bytes");
    }
    return new SpdmEvidence(b, signedLength, List.copyOf(blocks), opaque, driver, vbios);
  }

  /** The nonce the requester sent (request bytes 4..35). */
  public byte[] requestNonce() {
    return Arrays.copyOfRange(raw, 4, 4 + NONCE_LENGTH);
  }

  /** What the device signed: request ‖ response up to and including the opaque data. */
  public byte[] signedBytes() {
    return Arrays.copyOf(raw, signedLength);
  }

  /** The raw P-384 signature r‖s (96 bytes). */
  public byte[] signature() {
    return Arrays.copyOfRange(raw, signedLength, signedLength + SIGNATURE_LENGTH);
  }

  /** Bytes after the signature; tolerated and not covered by it. */
  public int trailingBytes() {
    return raw.length - signedLength - SIGNATURE_LENGTH;
  }

  public List<MeasurementBlock> blocks() {
    return blocks;
  }

  /** The block the RIMs call {@code rimIndex} (SPDM index {@code rimIndex + 1}). */
  public Optional<MeasurementBlock> blockForRimIndex(int rimIndex) {
    for (MeasurementBlock m : blocks) if (m.rimIndex() == rimIndex) return Optional.of(m);
    return Optional.empty();
  }

  /** Driver version from opaque field 3, e.g. {@code 545.00}. */
  public String driverVersion() {
    return driverVersion;
  }

  /** VBIOS version from opaque field 6 in NVIDIA's notation, e.g. {@code 96.00.5E.00.01}. */
  public String vbiosVersion() {
    return vbiosVersion;
  }

  /** Opaque field 20 (lower-case hex, 48 bytes), absent in 2023-era firmware. */
  public Optional<String> fwidHex() {
    byte[] f = opaque.get(OPAQUE_FWID);
    return f == null ? Optional.empty() : Optional.of(HEX.formatHex(f));
  }

  /** Opaque field 11, one byte: 0x55 disabled, 0xAA enabled. */
  public OptionalInt nvdec0Status() {
    byte[] s = opaque.get(OPAQUE_NVDEC0_STATUS);
    return s == null || s.length != 1 ? OptionalInt.empty() : OptionalInt.of(s[0] & 0xff);
  }

  /**
   * Bytes 0..3 as a little-endian u32 printed as four dotted hex pairs, then byte 4: nvtrust's
   * rendering, which is also what VBIOS RIMs carry as colloquialVersion.
   */
  private static String vbiosVersion(byte[] v) throws GpuVerificationException {
    if (v.length < 5) throw malformed("VBIOS version length", ">= 5 bytes", v.length + " bytes");
    return String.format("%02X.%02X.%02X.%02X.%02X", v[3], v[2], v[1], v[0], v[4]);
  }

  private static String nulTerminated(byte[] v) {
    int end = 0;
    while (end < v.length && v[end] != 0) end++;
    return new String(v, 0, end, StandardCharsets.US_ASCII);
  }

  private static byte[] required(Map<Integer, byte[]> opaque, int type, String what)
      throws GpuVerificationException {
    byte[] v = opaque.get(type);
    if (v == null) throw malformed(what + " opaque field missing", "field " + type, "absent");
    return v;
  }

  private static String hex8(int v) {
    return String.format("0x%02x", v);
  }

  static GpuVerificationException malformed(String detail, String expected, String actual) {
    return new GpuVerificationException(EVIDENCE_MALFORMED, detail, expected, actual);
  }

  /** Little-endian cursor that reports the field and offset of any overrun. */
  private static final class Reader {
    private final byte[] b;
    private int pos;

    Reader(byte[] b) {
      this.b = b;
    }

    int pos() {
      return pos;
    }

    void require(int n, String field) throws GpuVerificationException {
      if (n < 0 || pos + n > b.length) {
        throw malformed(field + " at offset " + pos + " is truncated",
            n + " bytes", (b.length - pos) + " bytes left");
      }
    }

    int u8(String field) throws GpuVerificationException {
      require(1, field);
      return b[pos++] & 0xff;
    }

    int u16(String field) throws GpuVerificationException {
      require(2, field);
      int v = (b[pos] & 0xff) | (b[pos + 1] & 0xff) << 8;
      pos += 2;
      return v;
    }

    int u24(String field) throws GpuVerificationException {
      require(3, field);
      int v = (b[pos] & 0xff) | (b[pos + 1] & 0xff) << 8 | (b[pos + 2] & 0xff) << 16;
      pos += 3;
      return v;
    }

    byte[] bytes(int n, String field) throws GpuVerificationException {
      require(n, field);
      byte[] v = Arrays.copyOfRange(b, pos, pos + n);
      pos += n;
      return v;
    }

    void skip(int n, String field) throws GpuVerificationException {
      require(n, field);
      pos += n;
    }

    void expectByte(int expected, String field) throws GpuVerificationException {
      int at = pos;
      int v = u8(field);
      if (v != expected) throw malformed(field + " at offset " + at, hex8(expected), hex8(v));
    }
  }
}
