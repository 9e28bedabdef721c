package dev.outbox.core.internal;

import java.util.LinkedHashMap;
import java.util.Map;

/** The flat string-to-string JSON objects stored in {@code outbox_message.headers}. */
public final class Json {
  private Json() {}

  /**
   * @param map header names and values
   * @return a JSON object
   */
  public static String write(Map<String, String> map) {
    StringBuilder sb = new StringBuilder("{");
    boolean first = true;
    for (var e : map.entrySet()) {
      if (!first) {
        sb.append(',');
      }
      first = false;
      quote(sb, e.getKey()).append(':');
      quote(sb, e.getValue());
    }
    return sb.append('}').toString();
  }

  /**
   * Parses what {@link #write} and PostgreSQL's {@code jsonb} output produce: one object whose
   * values are strings.
   *
   * @param json the object
   * @return its entries, in order
   * @throws IllegalArgumentException when it is not such an object
   */
  public static Map<String, String> read(String json) {
    Map<String, String> out = new LinkedHashMap<>();
    int[] pos = {skip(json, 0)};
    expect(json, pos, '{');
    if (peek(json, pos) == '}') {
      return out;
    }
    while (true) {
      String k = string(json, pos);
      expect(json, pos, ':');
      String v = string(json, pos);
      out.put(k, v);
      char c = peek(json, pos);
      pos[0]++;
      if (c == '}') {
        return out;
      }
      if (c != ',') {
        throw new IllegalArgumentException("expected , or } at " + (pos[0] - 1) + " in " + json);
      }
    }
  }

  private static StringBuilder quote(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    return sb.append('"');
  }

  private static int skip(String s, int i) {
    while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
      i++;
    }
    return i;
  }

  private static char peek(String s, int[] pos) {
    pos[0] = skip(s, pos[0]);
    if (pos[0] >= s.length()) {
      throw new IllegalArgumentException("unexpected end of " + s);
    }
    return s.charAt(pos[0]);
  }

  private static void expect(String s, int[] pos, char c) {
    if (peek(s, pos) != c) {
      throw new IllegalArgumentException("expected " + c + " at " + pos[0] + " in " + s);
    }
    pos[0]++;
  }

  private static String string(String s, int[] pos) {
    expect(s, pos, '"');
    StringBuilder sb = new StringBuilder();
    while (true) {
      char c = s.charAt(pos[0]++);
      if (c == '"') {
        return sb.toString();
      }
      if (c != '\\') {
        sb.append(c);
        continue;
      }
      char e = s.charAt(pos[0]++);
      switch (e) {
        case 'n' -> sb.append('\n');
        case 'r' -> sb.append('\r');
        case 't' -> sb.append('\t');
        case 'b' -> sb.append('\b');
        case 'f' -> sb.append('\f');
        case 'u' -> {
          sb.append((char) Integer.parseInt(s.substring(pos[0], pos[0] + 4), 16));
          pos[0] += 4;
        }
        default -> sb.append(e);
      }
    }
  }
}
