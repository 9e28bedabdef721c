package dev.outbox.http.server;

import java.util.Objects;

/**
 * Parsing and validation of the {@code Idempotency-Key} request header.
 *
 * <p>The IETF draft "The Idempotency-Key HTTP Header Field" defines the value as a Structured
 * Field string ({@code Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"}). Many clients send
 * a bare token instead ({@code Idempotency-Key: 8e03978e-40d5-...}); both are accepted and mean the
 * same key:
 *
 * <ul>
 *   <li>a value that starts with {@code "} is parsed as an sf-string: printable ASCII (space
 *       included) up to the closing quote, with {@code \"} and {@code \\} as the only escapes, and
 *       nothing after the closing quote;
 *   <li>any other value is taken as a plain token and must consist of the characters of an HTTP
 *       token (RFC 9110 {@code tchar}: letters, digits and {@code !#$%&'*+-.^_`|~}) or of a
 *       Structured Field token ({@code :} and {@code /}). A value such as {@code not"quoted} or
 *       {@code a,b} is neither a token nor an sf-string and is refused: a quote, comma, semicolon,
 *       parenthesis or similar in a bare value usually means a broken client or a header that
 *       was folded or split on its way.
 * </ul>
 *
 * The key itself (without quotes) must be 1 to {@value #MAX_LENGTH} characters long.
 */
public final class IdempotencyKey {
    /** The header name. */
    public static final String HEADER = "Idempotency-Key";

    /** The header a replayed response carries, with value {@code true}. */
    public static final String REPLAYED_HEADER = "Idempotent-Replayed";

    /** The longest key accepted, in characters. */
    public static final int MAX_LENGTH = 255;

    private IdempotencyKey() {}

    /**
     * @param headerValue the raw header value
     * @return the key, unquoted
     * @throws NullPointerException when {@code headerValue} is null
     * @throws IllegalArgumentException when the value is empty, too long or malformed; the message
     *     says what is wrong and how to fix it
     */
    public static String parse(String headerValue) {
        Objects.requireNonNull(headerValue, "headerValue may not be null");
        String value = headerValue.strip();
        if (value.isEmpty()) {
            throw new IllegalArgumentException("The " + HEADER
                    + " header is empty. Send a unique value per operation, e.g. a UUID: " + HEADER + ": \"<uuid>\".");
        }
        String key = value.charAt(0) == '"' ? unquote(value) : bare(value);
        if (key.isEmpty()) {
            throw new IllegalArgumentException(
                    "The " + HEADER + " header holds an empty string. Send a unique value per operation, e.g. a UUID.");
        }
        if (key.length() > MAX_LENGTH) {
            throw new IllegalArgumentException(
                    "The " + HEADER + " is " + key.length() + " characters long; the limit is " + MAX_LENGTH
                            + ". Use a shorter key, e.g. a UUID (36 characters).");
        }
        return key;
    }

    /**
     * @param key a key
     * @return the key as an sf-string header value, quoted and escaped
     * @throws IllegalArgumentException when the key cannot be sent (see {@link #parse})
     */
    public static String quote(String key) {
        Objects.requireNonNull(key, "key may not be null");
        StringBuilder sb = new StringBuilder(key.length() + 2).append('"');
        for (int i = 0; i < key.length(); i++) {
            char c = key.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\');
            }
            sb.append(c);
        }
        String quoted = sb.append('"').toString();
        parse(quoted);
        return quoted;
    }

    private static String bare(String value) {
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (!tokenChar(c)) {
                throw new IllegalArgumentException(
                        "The " + HEADER + " contains " + describe(c) + " at position " + (i + 1)
                                + "; an unquoted key is a token (letters, digits and !#$%&'*+-.^_`|~:/). Use a UUID, or send the key as a"
                                + " quoted string, escaping \" and \\: " + HEADER + ": \"<key>\".");
            }
        }
        return value;
    }

    private static boolean tokenChar(char c) {
        return (c >= 'a' && c <= 'z')
                || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9')
                || "!#$%&'*+-.^_`|~:/".indexOf(c) >= 0;
    }

    private static String unquote(String value) {
        StringBuilder sb = new StringBuilder(value.length());
        for (int i = 1; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '\\') {
                if (i + 1 >= value.length() || (value.charAt(i + 1) != '"' && value.charAt(i + 1) != '\\')) {
                    throw new IllegalArgumentException("The quoted " + HEADER + " has a backslash at position "
                            + (i + 1) + " that does not escape \" or \\; escape a backslash as \\\\.");
                }
                sb.append(value.charAt(++i));
            } else if (c == '"') {
                if (i != value.length() - 1) {
                    throw new IllegalArgumentException(
                            "The quoted " + HEADER + " has characters after its closing quote (position " + (i + 1)
                                    + "); send exactly one quoted string.");
                }
                return sb.toString();
            } else if (c < 0x20 || c > 0x7e) {
                throw new IllegalArgumentException("The quoted " + HEADER + " contains " + describe(c) + " at position "
                        + (i + 1) + "; a quoted key may hold printable ASCII characters only. Use a UUID.");
            } else {
                sb.append(c);
            }
        }
        throw new IllegalArgumentException("The quoted " + HEADER + " has no closing quote; send \"<key>\".");
    }

    private static String describe(char c) {
        return String.format("character U+%04X", (int) c);
    }
}
