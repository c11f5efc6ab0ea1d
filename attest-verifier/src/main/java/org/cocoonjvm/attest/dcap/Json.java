package org.cocoonjvm.attest.dcap;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A minimal strict JSON reader for collateral: objects become {@code Map}, arrays {@code List},
 * numbers {@code BigDecimal}. Only used to read values; signed text is kept verbatim elsewhere.
 */
final class Json {
  private final String s;
  private int pos;

  private Json(String s) {
    this.s = s;
  }

  static Object parse(String text) {
    Json j = new Json(text);
    Object v = j.value();
    j.ws();
    if (j.pos != text.length()) throw j.error("trailing characters");
    return v;
  }

  private Object value() {
    ws();
    if (pos >= s.length()) throw error("unexpected end");
    char c = s.charAt(pos);
    return switch (c) {
      case '{' -> object();
      case '[' -> array();
      case '"' -> string();
      case 't' -> literal("true", Boolean.TRUE);
      case 'f' -> literal("false", Boolean.FALSE);
      case 'n' -> literal("null", null);
      default -> number();
    };
  }

  private Map<String, Object> object() {
    Map<String, Object> m = new LinkedHashMap<>();
    pos++;
    ws();
    if (peek('}')) return m;
    do {
      ws();
      String key = string();
      ws();
      expect(':');
      m.put(key, value());
      ws();
    } while (peek(','));
    expect('}');
    return m;
  }

  private List<Object> array() {
    List<Object> l = new ArrayList<>();
    pos++;
    ws();
    if (peek(']')) return l;
    do {
      l.add(value());
      ws();
    } while (peek(','));
    expect(']');
    return l;
  }

  private String string() {
    expect('"');
    StringBuilder b = new StringBuilder();
    while (true) {
      if (pos >= s.length()) throw error("unterminated string");
      char c = s.charAt(pos++);
      if (c == '"') return b.toString();
      if (c != '\\') {
        b.append(c);
        continue;
      }
      char e = s.charAt(pos++);
      switch (e) {
        case 'n' -> b.append('\n');
        case 't' -> b.append('\t');
        case 'r' -> b.append('\r');
        case 'b' -> b.append('\b');
        case 'f' -> b.append('\f');
        case 'u' -> {
          b.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
          pos += 4;
        }
        default -> b.append(e);
      }
    }
  }

  private Object literal(String word, Object v) {
    if (!s.startsWith(word, pos)) throw error("bad literal");
    pos += word.length();
    return v;
  }

  private BigDecimal number() {
    int start = pos;
    while (pos < s.length() && "+-0123456789.eE".indexOf(s.charAt(pos)) >= 0) pos++;
    if (start == pos) throw error("unexpected character '" + s.charAt(pos) + "'");
    return new BigDecimal(s.substring(start, pos));
  }

  private void ws() {
    while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) pos++;
  }

  private boolean peek(char c) {
    if (pos < s.length() && s.charAt(pos) == c) {
      pos++;
      return true;
    }
    return false;
  }

  private void expect(char c) {
    if (!peek(c)) throw error("expected '" + c + "'");
  }

  private IllegalArgumentException error(String what) {
    return new IllegalArgumentException("JSON " + what + " at offset " + pos);
  }

  // Typed accessors used by the collateral records.

  @SuppressWarnings("unchecked")
  static Map<String, Object> obj(Object o, String field) {
    if (o instanceof Map<?, ?> m) return (Map<String, Object>) m;
    throw new IllegalArgumentException("JSON field " + field + " is not an object");
  }

  static Map<String, Object> obj(Map<String, Object> m, String field) {
    return obj(req(m, field), field);
  }

  static List<?> list(Map<String, Object> m, String field) {
    if (req(m, field) instanceof List<?> l) return l;
    throw new IllegalArgumentException("JSON field " + field + " is not an array");
  }

  static String str(Map<String, Object> m, String field) {
    if (req(m, field) instanceof String v) return v;
    throw new IllegalArgumentException("JSON field " + field + " is not a string");
  }

  static int integer(Map<String, Object> m, String field) {
    if (req(m, field) instanceof BigDecimal v) return v.intValueExact();
    throw new IllegalArgumentException("JSON field " + field + " is not a number");
  }

  static Object req(Map<String, Object> m, String field) {
    if (!m.containsKey(field)) throw new IllegalArgumentException("JSON field " + field + " missing");
    return m.get(field);
  }
}
