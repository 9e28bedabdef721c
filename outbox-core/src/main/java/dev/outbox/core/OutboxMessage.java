package dev.outbox.core;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * One message to append to the outbox. Immutable; the {@code with...} methods return copies.
 *
 * @param messageId the message id, or {@code null} to have {@link Outbox} mint a UUIDv7
 * @param topic the Kafka topic
 * @param key the Kafka record key and ordering key (usually the aggregate id), or {@code null}
 * @param type the message type, e.g. the Avro schema's full name
 * @param contentType the payload's content type
 * @param payload the record value; {@code null} publishes a tombstone
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

    private static final Pattern TRACEPARENT = Pattern.compile("^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$");

    /**
     * @throws NullPointerException when topic, type, contentType or headers is null
     * @throws IllegalArgumentException when the topic or type is empty, the topic is not a valid
     *     Kafka topic name, a header name is reserved, or a traceparent is malformed
     */
    public OutboxMessage {
        Objects.requireNonNull(topic, "topic may not be null");
        Objects.requireNonNull(type, "type may not be null");
        Objects.requireNonNull(contentType, "contentType may not be null");
        Objects.requireNonNull(headers, "headers may not be null; pass Map.of()");
        if (!isTopicName(topic)) {
            throw new IllegalArgumentException("topic '" + topic
                    + "' is not a valid Kafka topic name: use 1 to 249 characters from [a-zA-Z0-9._-]");
        }
        if (type.isEmpty()) {
            throw new IllegalArgumentException(
                    "type may not be empty; name the message type, e.g. the schema's full name");
        }
        for (var e : headers.entrySet()) {
            if (OutboxHeaders.isReserved(e.getKey())) {
                throw new IllegalArgumentException(
                        "header '" + e.getKey() + "' is set by the relay itself; choose another name");
            }
            Objects.requireNonNull(e.getValue(), "header '" + e.getKey() + "' has a null value");
        }
        String traceparent = headers.get(OutboxHeaders.TRACEPARENT);
        if (traceparent != null && !TRACEPARENT.matcher(traceparent).matches()) {
            throw new IllegalArgumentException("traceparent '" + traceparent
                    + "' is not a W3C trace context (version-traceid-parentid-flags, lower-case hex)");
        }
        headers = Map.copyOf(headers);
    }

    /**
     * @return whether {@code topic} is a legal Kafka topic name: 1 to 249 characters from {@code
     *     [a-zA-Z0-9._-]} (checked per character: a regular expression would be compiled for every
     *     message appended)
     */
    private static boolean isTopicName(String topic) {
        if (topic.isEmpty() || topic.length() > 249) {
            return false;
        }
        for (int i = 0; i < topic.length(); i++) {
            char c = topic.charAt(i);
            boolean legal = (c >= 'a' && c <= 'z')
                    || (c >= 'A' && c <= 'Z')
                    || (c >= '0' && c <= '9')
                    || c == '.'
                    || c == '_'
                    || c == '-';
            if (!legal) {
                return false;
            }
        }
        return true;
    }

    /**
     * A message with raw bytes.
     *
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null}
     * @param type the message type
     * @param contentType the payload's content type, e.g. {@code application/json}
     * @param payload the bytes, or {@code null} for a tombstone
     * @return the message, without id (the outbox mints one)
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
     */
    public OutboxMessage withHeader(String name, String value) {
        Map<String, String> h = new LinkedHashMap<>(headers);
        h.put(Objects.requireNonNull(name, "name may not be null"), value);
        return new OutboxMessage(messageId, topic, key, type, contentType, payload, h);
    }

    /**
     * @param traceparent the W3C {@code traceparent} of the producing request
     * @return a copy that carries it to the Kafka record
     */
    public OutboxMessage withTraceparent(String traceparent) {
        return withHeader(OutboxHeaders.TRACEPARENT, traceparent);
    }
}
