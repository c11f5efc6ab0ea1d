package org.cocoonjvm.attest.policy;

import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * What a peer's configuration claims (its RA-TLS certificate's configuration extension,
 * {@code NodeConfig}) must say: for each key named here, one of the values listed. Rejects by
 * default: a peer whose claims lack a named key is refused as one with a value not listed is, so
 * {@code "engine": ["native"]} refuses a worker that says nothing of its engine. Keys not named
 * here are not looked at, and the empty policy ({@link #ANY}, the default) looks at none.
 *
 * @param allowed for each key, the values accepted (never empty)
 */
public record ConfigPolicy(SortedMap<String, Set<String>> allowed) {
  public static final ConfigPolicy ANY = new ConfigPolicy(new TreeMap<>());

  public ConfigPolicy {
    TreeMap<String, Set<String>> copy = new TreeMap<>();
    allowed.forEach((key, values) -> {
      if (values.isEmpty()) {
        throw new IllegalArgumentException("policy: config." + key + " lists no value, so no peer could pass; leave the key "
            + "out to accept any");
      }
      copy.put(key, Collections.unmodifiableSet(new LinkedHashSet<>(values)));
    });
    allowed = Collections.unmodifiableSortedMap(copy);
  }

  /** Why {@code claims} fail this policy, one line per key; empty when they pass. */
  public List<String> violations(Map<String, String> claims) {
    List<String> out = new ArrayList<>();
    allowed.forEach((key, values) -> {
      String claimed = claims.get(key);
      if (claimed == null) {
        out.add("the peer's configuration does not say its " + key + "; the policy accepts " + values);
      } else if (!values.contains(claimed)) {
        out.add("the peer's " + key + " is '" + claimed + "'; the policy accepts " + values);
      }
    });
    return List.copyOf(out);
  }

  /** The {@code config} object of policy JSON: {@code {"engine": ["native"], …}}; it replaces the base's whole. */
  static ConfigPolicy parse(Object value) {
    if (!(value instanceof JsonObject o)) throw new IllegalArgumentException("policy: config must be an object");
    TreeMap<String, Set<String>> allowed = new TreeMap<>();
    for (String key : o.fieldNames()) {
      allowed.put(key, new LinkedHashSet<>(PolicyJson.strings(o, key, "config." + key)));
    }
    return new ConfigPolicy(allowed);
  }
}
