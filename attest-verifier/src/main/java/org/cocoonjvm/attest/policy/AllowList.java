package org.cocoonjvm.attest.policy;

import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * A set of accepted values, or explicitly none checked. An empty list accepts nothing: "not
 * checked" is only ever {@link #ANY}, written {@code "any"} in policy JSON.
 */
public sealed interface AllowList permits AllowList.Any, AllowList.Only {
  AllowList ANY = new Any();
  AllowList NOTHING = new Only(Set.of());

  boolean allows(String value);

  /** Values compare as lower case, so hex case does not matter. */
  static AllowList of(Set<String> values) {
    TreeSet<String> lower = new TreeSet<>();
    for (String v : values) lower.add(v.toLowerCase(Locale.ROOT));
    return new Only(Set.copyOf(lower));
  }

  record Any() implements AllowList {
    @Override
    public boolean allows(String value) {
      return true;
    }

    @Override
    public String toString() {
      return "any";
    }
  }

  record Only(Set<String> values) implements AllowList {
    @Override
    public boolean allows(String value) {
      return values.contains(value.toLowerCase(Locale.ROOT));
    }

    @Override
    public String toString() {
      return new TreeSet<>(values).toString();
    }
  }
}
