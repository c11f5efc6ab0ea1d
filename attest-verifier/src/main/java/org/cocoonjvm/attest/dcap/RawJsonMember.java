package org.cocoonjvm.attest.dcap;

/**
 * The exact text of one top-level member's value in a JSON object. PCS signs the bytes of the
 * inner {@code tcbInfo} / {@code enclaveIdentity} object as sent, so that substring is kept rather
 * than re-serialized (reference §2.2). Only locates; {@link Json} parses.
 */
final class RawJsonMember {
  private final String text;
  private int pos;

  private RawJsonMember(String text) {
    this.text = text;
  }

  /** The value text of top-level member {@code key}; throws {@link IllegalArgumentException} if absent or unbalanced. */
  static String of(String json, String key) {
    RawJsonMember r = new RawJsonMember(json);
    r.skipSpace();
    r.expect('{');
    while (true) {
      r.skipSpace();
      if (r.peek() == '}') break;
      String name = r.string();
      r.skipSpace();
      r.expect(':');
      r.skipSpace();
      int start = r.pos;
      r.skipValue();
      if (name.equals(key)) return json.substring(start, r.pos);
      r.skipSpace();
      if (r.peek() == ',') r.pos++;
    }
    throw new IllegalArgumentException("no top-level member \"" + key + "\"");
  }

  private char peek() {
    if (pos >= text.length()) throw new IllegalArgumentException("JSON ends early at " + pos);
    return text.charAt(pos);
  }

  private void expect(char c) {
    if (peek() != c) throw new IllegalArgumentException("expected '" + c + "' at " + pos + ", got '" + peek() + "'");
    pos++;
  }

  private void skipSpace() {
    while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) pos++;
  }

  /** A string token; member names here never need unescaping beyond skipping escapes. */
  private String string() {
    int start = pos;
    skipString();
    return text.substring(start + 1, pos - 1);
  }

  private void skipString() {
    expect('"');
    while (peek() != '"') pos += peek() == '\\' ? 2 : 1;
    pos++;
  }

  private void skipValue() {
    char c = peek();
    if (c == '"') {
      skipString();
    } else if (c == '{' || c == '[') {
      int depth = 0;
      do {
        char d = peek();
        if (d == '"') {
          skipString();
          continue;
        }
        if (d == '{' || d == '[') depth++;
        if (d == '}' || d == ']') depth--;
        pos++;
      } while (depth > 0);
    } else {
      while (pos < text.length() && ",}] \t\r\n".indexOf(text.charAt(pos)) < 0) pos++;
    }
  }
}
