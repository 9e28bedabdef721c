package dev.outbox.core;

import dev.outbox.core.internal.TopicNames;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * One message to append to the outbox. Immutable but for its payload, which is kept, not copied (a copy per
 * message would be paid on every append): do not change the array until the message is appended, and do
 * not serialize several messages into one reused buffer. The {@code with...} methods return copies.
 *
 * @param messageId the message id, or {@code null} to have {@link Outbox} mint a UUIDv7
 * @param topic the Kafka topic
 * @param key the Kafka record key and ordering key (usually the aggregate id), or {@code null} for a
 *     message without one; not empty
 * @param type the message type, e.g. the Avro schema's full name
 * @param contentType the payload's content type
 * @param payload the record value, not copied; {@code null} publishes a tombstone
 * @param headers extra string headers; names reserved by {@link OutboxHeaders} are refused
 */
public record OutboxMessage(
        UUID messageId,
        String topic,
        String key,
        String type,
        String contentType,
        byte[] payload,
        Map<String, String> headers) {

    /**
     * The longest key, in bytes of UTF-8: a parked row's key goes into a B-tree index, whose entries
     * PostgreSQL caps at 2,704 bytes with 8 KiB pages (the shard and the id take some of them), so a
     * longer key could make its row impossible to park.
     */
    public static final int MAX_KEY_BYTES = 2048;

    private static final Pattern TRACEPARENT = Pattern.compile("[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}");
    /** The length of a version-00 {@code traceparent}, and of the part a later version shares with it. */
    private static final int TRACEPARENT_LENGTH = 55;

    private static final String ZEROS = "0".repeat(32);

    /**
     * @throws NullPointerException when topic, type, contentType or headers is null, or a header has a
     *     null name or value
     * @throws IllegalArgumentException when the topic or type is empty, the content type blank, the topic is not a valid
     *     Kafka topic name, the key is empty (a message without a key has a null one) or longer than
     *     {@link #MAX_KEY_BYTES} in UTF-8, a string holds a NUL character (PostgreSQL's text cannot)
     *     or a lone UTF-16 surrogate (it has no UTF-8 form), a header name is reserved, {@code
     *     traceparent} or {@code tracestate} is spelt in another case, or a traceparent is malformed
     *     (see {@link #isTraceparent(String)})
     */
    public OutboxMessage {
        Objects.requireNonNull(topic, "topic may not be null");
        Objects.requireNonNull(type, "type may not be null");
        Objects.requireNonNull(contentType, "contentType may not be null");
        Objects.requireNonNull(headers, "headers may not be null; pass Map.of()");
        if (!TopicNames.isValid(topic)) {
            throw new IllegalArgumentException("topic '" + topic
                    + "' is not a valid Kafka topic name: use 1 to 249 characters from [a-zA-Z0-9._-],"
                    + " other than '.' and '..'");
        }
        if (type.isEmpty()) {
            throw new IllegalArgumentException(
                    "type may not be empty; name the message type, e.g. the schema's full name");
        }
        if (contentType.isBlank()) {
            throw new IllegalArgumentException("contentType may not be blank: consumers choose their decoder by it;"
                    + " give the payload's media type, e.g. application/json");
        }
        if (key != null) {
            if (key.isEmpty()) {
                throw new IllegalArgumentException("key is empty: pass null for a message without an ordering key,"
                        + " or the aggregate id (an empty key is usually an id that was never set; all messages"
                        + " keyed \"\" would share one partition and one order)");
            }
            if (key.length() > MAX_KEY_BYTES / 3 && utf8Length(key) > MAX_KEY_BYTES) {
                throw new IllegalArgumentException("key is " + utf8Length(key) + " bytes in UTF-8, more than "
                        + MAX_KEY_BYTES + ": a row that must be parked keeps its key in an index that cannot hold"
                        + " it; use a shorter key, e.g. the aggregate id or a SHA-256 of the long one");
            }
            requireStorable(key, "key");
        }
        requireStorable(type, "type");
        requireStorable(contentType, "contentType");
        for (var e : headers.entrySet()) {
            Objects.requireNonNull(e.getKey(), "headers may not have a null name");
            if (OutboxHeaders.isReserved(e.getKey())) {
                throw new IllegalArgumentException("header '" + e.getKey()
                        + "' is set by the relay itself (names are compared without regard to case; the"
                        + " content type goes in OutboxMessage.contentType); choose another name");
            }
            String lower = e.getKey().toLowerCase(Locale.ROOT);
            if ((lower.equals(OutboxHeaders.TRACEPARENT) || lower.equals(OutboxHeaders.TRACESTATE))
                    && !e.getKey().equals(lower)) {
                throw new IllegalArgumentException("header '" + e.getKey() + "' is a W3C trace context header"
                        + " spelt in another case: write it '" + lower
                        + "', the name the relay and the consumers read (and the one a trace inherited from"
                        + " the builder's supplier would be set under too)");
            }
            Objects.requireNonNull(e.getValue(), "header '" + e.getKey() + "' has a null value");
            requireStorable(e.getKey(), "a header name");
            requireStorable(e.getValue(), "header '" + e.getKey() + "'");
        }
        String traceparent = headers.get(OutboxHeaders.TRACEPARENT);
        if (traceparent != null && !isTraceparent(traceparent)) {
            throw new IllegalArgumentException("traceparent '" + traceparent
                    + "' is not a W3C trace context: write version-traceid-parentid-flags in lower-case hex (2, 32,"
                    + " 16 and 2 digits), with nothing after it for version 00 and nothing or '-' and more for a"
                    + " later version; not version ff, and neither id all zeros");
        }
        headers = Map.copyOf(headers);
    }

    /**
     * Whether a value is a W3C trace context as a message may carry it, the way the W3C Trace Context
     * Recommendation has a version-00 parser read it: its first 55 characters are {@code
     * version-traceid-parentid-flags} in lower-case hex (2, 32, 16 and 2 digits). Version {@code 00}
     * is those 55 characters and nothing more. A later version is read as version 00: its first 55
     * characters are in that format, and a longer value goes on with {@code -} at the 56th and
     * anything after it (what a later version adds). Version {@code ff} is invalid, and so is a trace
     * id or parent id of all zeros, in every version (a consumer's propagator would drop such a value
     * and start a new trace).
     *
     * @param value a {@code traceparent} header value
     * @return whether it is a W3C trace context as described above
     */
    public static boolean isTraceparent(String value) {
        if (value == null || value.length() < TRACEPARENT_LENGTH) {
            return false;
        }
        if (value.length() > TRACEPARENT_LENGTH
                && (value.startsWith("00-") || value.charAt(TRACEPARENT_LENGTH) != '-')) {
            return false;
        }
        return TRACEPARENT.matcher(value).region(0, TRACEPARENT_LENGTH).matches()
                && !value.startsWith("ff-")
                && !value.regionMatches(3, ZEROS, 0, 32)
                && !value.regionMatches(36, ZEROS, 0, 16);
    }

    /**
     * Refuses what PostgreSQL's text cannot store faithfully: a NUL character (refused mid-transaction)
     * and a lone UTF-16 surrogate (pgjdbc writes it as {@code ?}, so two keys could become one).
     */
    private static void requireStorable(String value, String what) {
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '\0') {
                throw new IllegalArgumentException(
                        what + " holds a NUL character (U+0000), which PostgreSQL's text cannot store; remove it");
            }
            if (Character.isSurrogate(c)) {
                if (Character.isHighSurrogate(c)
                        && i + 1 < value.length()
                        && Character.isLowSurrogate(value.charAt(i + 1))) {
                    i++;
                } else {
                    throw new IllegalArgumentException(what + " holds a lone UTF-16 surrogate at index " + i
                            + " (U+" + HexFormat.of().withUpperCase().toHexDigits(c)
                            + "), which is no character and has no UTF-8 form; fix how the string is built"
                            + " (a string cut between the two halves of a pair, or decoded with the wrong charset)");
                }
            }
        }
    }

    private static int utf8Length(String s) {
        int bytes = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                bytes += 1;
            } else if (c < 0x800) {
                bytes += 2;
            } else if (Character.isHighSurrogate(c)
                    && i + 1 < s.length()
                    && Character.isLowSurrogate(s.charAt(i + 1))) {
                bytes += 4;
                i++;
            } else {
                bytes += 3;
            }
        }
        return bytes;
    }

    /**
     * A message with raw bytes.
     *
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null} for a message without one; not empty
     * @param type the message type
     * @param contentType the payload's content type, e.g. {@code application/json}
     * @param payload the bytes, or {@code null} for a tombstone
     * @return the message, without id (the outbox mints one)
     * @throws NullPointerException when topic, type or contentType is null
     * @throws IllegalArgumentException when the topic or type is empty, the content type blank, the
     *     topic is not a valid Kafka topic name, the key is empty (pass {@code null} for a message
     *     without one) or longer than {@link #MAX_KEY_BYTES} in UTF-8, or the key, type or content
     *     type holds a NUL character or a lone UTF-16 surrogate (see the constructor)
     */
    public static OutboxMessage of(String topic, String key, String type, String contentType, byte[] payload) {
        return new OutboxMessage(null, topic, key, type, contentType, payload, Map.of());
    }

    /**
     * @param id the message id to use instead of a minted one (e.g. derived from an upstream id)
     * @return a copy with that id
     */
    public OutboxMessage withMessageId(UUID id) {
        return new OutboxMessage(
                Objects.requireNonNull(id, "id may not be null"), topic, key, type, contentType, payload, headers);
    }

    /**
     * @param name header name
     * @param value header value
     * @return a copy with the header added or replaced
     * @throws NullPointerException when the name or the value is null
     * @throws IllegalArgumentException when the name is reserved, or the value not storable (see the
     *     constructor)
     */
    public OutboxMessage withHeader(String name, String value) {
        Map<String, String> h = new LinkedHashMap<>(headers);
        h.put(Objects.requireNonNull(name, "name may not be null"), value);
        return new OutboxMessage(messageId, topic, key, type, contentType, payload, h);
    }

    /**
     * @param traceparent the W3C {@code traceparent} of the producing request
     * @return a copy that carries it to the Kafka record
     * @throws NullPointerException when it is null
     * @throws IllegalArgumentException when it is not a W3C trace context (see {@link
     *     #isTraceparent(String)})
     */
    public OutboxMessage withTraceparent(String traceparent) {
        return withHeader(OutboxHeaders.TRACEPARENT, traceparent);
    }
}
