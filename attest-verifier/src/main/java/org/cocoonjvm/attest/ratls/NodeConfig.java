package org.cocoonjvm.attest.ratls;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * What a node says of its own configuration: the non-critical {@link RaTlsIdentity#CONFIG_OID}
 * extension of its RA-TLS certificate, a JSON object of strings (a worker's {@code engine}, the
 * digest of a node's peer policy, …), which Cocoon peers ignore.
 *
 * <p>Why a peer may believe it: the certificate is signed with the key whose SHA-512 the quote's
 * report_data holds, and that key is made inside the TEE and never leaves it, so only the code the
 * quote measures can have written these values. The measurement says which code runs; this says
 * what that code was told to do, which the image's measurement alone does not (an image that
 * takes its engine from the command line may as well forward every prompt elsewhere: architecture,
 * I-2 and I-3). A peer's {@link org.cocoonjvm.attest.policy.ConfigPolicy} decides which values it
 * accepts.
 *
 * @param values keys of lowercase letters, digits and underscores; sorted, so that the same
 *     configuration always encodes to the same bytes
 */
public record NodeConfig(SortedMap<String, String> values) {
  /** No claims: the extension is left out. */
  public static final NodeConfig NONE = new NodeConfig(new TreeMap<>());
  /** The most the extension may hold; a certificate travels in every handshake. */
  static final int MOST_BYTES = 4096;
  private static final Pattern KEY = Pattern.compile("[a-z0-9_]{1,64}");

  public NodeConfig {
    for (Map.Entry<String, String> e : values.entrySet()) {
      if (!KEY.matcher(e.getKey()).matches()) {
        throw new IllegalArgumentException("node config key '" + e.getKey() + "' is not 1 to 64 of [a-z0-9_]");
      }
      if (e.getValue() == null) throw new IllegalArgumentException("node config '" + e.getKey() + "' has no value");
    }
    values = Collections.unmodifiableSortedMap(new TreeMap<>(values));
  }

  public static NodeConfig of(Map<String, String> values) {
    return new NodeConfig(new TreeMap<>(values));
  }

  public boolean isEmpty() {
    return values.isEmpty();
  }

  /** This configuration with {@code more} added; a key in both takes {@code more}'s value. */
  public NodeConfig with(Map<String, String> more) {
    TreeMap<String, String> all = new TreeMap<>(values);
    all.putAll(more);
    return new NodeConfig(all);
  }

  public JsonObject toJson() {
    JsonObject out = new JsonObject();
    values.forEach(out::put);
    return out;
  }

  /** The extension's value: the JSON object's UTF-8 bytes. */
  byte[] encode() {
    byte[] bytes = toJson().encode().getBytes(StandardCharsets.UTF_8);
    if (bytes.length > MOST_BYTES) {
      throw new IllegalArgumentException("node config is " + bytes.length + " bytes encoded, at most " + MOST_BYTES);
    }
    return bytes;
  }

  /** A peer's extension value; refused as {@code CONFIG_REJECTED} when it is not what {@link #encode} makes. */
  static NodeConfig parse(byte[] extension) throws RaTlsException {
    if (extension.length > MOST_BYTES) {
      throw new RaTlsException(RaTlsException.Reason.CONFIG_REJECTED, "the configuration extension is " + extension.length
          + " bytes, at most " + MOST_BYTES);
    }
    JsonObject json;
    try {
      json = new JsonObject(new String(extension, StandardCharsets.UTF_8));
    } catch (DecodeException | ClassCastException e) {
      throw new RaTlsException(RaTlsException.Reason.CONFIG_REJECTED, "the configuration extension is not a JSON object");
    }
    TreeMap<String, String> values = new TreeMap<>();
    for (Map.Entry<String, Object> e : json) {
      if (!(e.getValue() instanceof String s)) {
        throw new RaTlsException(RaTlsException.Reason.CONFIG_REJECTED, "configuration '" + e.getKey() + "' is not a string");
      }
      values.put(e.getKey(), s);
    }
    try {
      return new NodeConfig(values);
    } catch (IllegalArgumentException e) {
      throw new RaTlsException(RaTlsException.Reason.CONFIG_REJECTED, e.getMessage());
    }
  }
}
