package dev.outbox.core.internal;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The two flat JSON shapes the project stores in {@code jsonb} columns: an object of strings
 * (outbox message headers) and an object of string arrays (stored HTTP response headers). Only
 * those shapes are written and read; anything else is refused.
 */
public final class Json {
    private Json() {}

    /**
     * @param map names and values
     * @return a JSON object of strings
     */
    public static String write(Map<String, String> map) {
        return writeObject(map, (sb, v) -> quote(sb, v));
    }

    /**
     * @param map names and value lists
     * @return a JSON object of string arrays
     */
    public static String writeLists(Map<String, List<String>> map) {
        return writeObject(map, (sb, values) -> {
            sb.append('[');
            for (int i = 0; i < values.size(); i++) {
                if (i > 0) {
                    sb.append(',');
                }
                quote(sb, values.get(i));
            }
            sb.append(']');
        });
    }

    /**
     * @param json what {@link #write} or PostgreSQL's {@code jsonb} output of it produced
     * @return its entries, in order
     * @throws IllegalArgumentException when it is not a JSON object of strings
     */
    public static Map<String, String> read(String json) {
        return new Parser(json).document(Parser::string);
    }

    /**
     * @param json what {@link #writeLists} or PostgreSQL's {@code jsonb} output of it produced
     * @return its entries, in order
     * @throws IllegalArgumentException when it is not a JSON object of string arrays
     */
    public static Map<String, List<String>> readLists(String json) {
        return new Parser(json).document(Parser::array);
    }

    private interface ValueWriter<V> {
        void write(StringBuilder sb, V value);
    }

    private static <V> String writeObject(Map<String, V> map, ValueWriter<V> values) {
        StringBuilder sb = new StringBuilder("{");
        boolean first = true;
        for (var e : map.entrySet()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            quote(sb, e.getKey()).append(':');
            values.write(sb, e.getValue());
        }
        return sb.append('}').toString();
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

    private static final class Parser {
        private final String s;
        private int pos;

        Parser(String s) {
            this.s = s;
        }

        <V> Map<String, V> document(Function<Parser, V> value) {
            Map<String, V> map = new LinkedHashMap<>();
            skipWhitespace();
            expect('{');
            skipWhitespace();
            if (peek() == '}') {
                pos++;
            } else {
                while (true) {
                    skipWhitespace();
                    String name = string();
                    skipWhitespace();
                    expect(':');
                    skipWhitespace();
                    map.put(name, value.apply(this));
                    skipWhitespace();
                    char c = next();
                    if (c == '}') {
                        break;
                    }
                    if (c != ',') {
                        throw error("expected , or }");
                    }
                }
            }
            skipWhitespace();
            if (pos != s.length()) {
                throw error("trailing characters");
            }
            return map;
        }

        List<String> array() {
            List<String> list = new ArrayList<>();
            expect('[');
            skipWhitespace();
            if (peek() == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipWhitespace();
                list.add(string());
                skipWhitespace();
                char c = next();
                if (c == ']') {
                    return list;
                }
                if (c != ',') {
                    throw error("expected , or ]");
                }
            }
        }

        String string() {
            expect('"');
            StringBuilder sb = new StringBuilder();
            while (true) {
                char c = next();
                if (c == '"') {
                    return sb.toString();
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                char e = next();
                switch (e) {
                    case '"', '\\', '/' -> sb.append(e);
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'u' -> {
                        if (pos + 4 > s.length()) {
                            throw error("truncated \\u escape");
                        }
                        sb.append((char) Integer.parseInt(s.substring(pos, pos + 4), 16));
                        pos += 4;
                    }
                    default -> throw error("bad escape \\" + e);
                }
            }
        }

        void skipWhitespace() {
            while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) {
                pos++;
            }
        }

        char peek() {
            if (pos >= s.length()) {
                throw error("unexpected end");
            }
            return s.charAt(pos);
        }

        char next() {
            char c = peek();
            pos++;
            return c;
        }

        void expect(char c) {
            if (next() != c) {
                throw error("expected " + c);
            }
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException(
                    "not the expected flat JSON object: " + what + " at " + pos + " in " + s);
        }
    }
}
