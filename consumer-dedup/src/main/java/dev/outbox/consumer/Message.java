package dev.outbox.consumer;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.schemas.AvroCodec;
import dev.outbox.schemas.JsonCodec;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import org.apache.avro.specific.SpecificRecord;

/**
 * One consumed record as the handler sees it: its message id (the dedup identity), where it came
 * from, its key, headers and payload.
 *
 * <p>A class rather than a record because it carries the consumer's {@link AvroCodec} for {@link
 * #payload(Class)}, and because byte-array components would make a record's {@code equals}
 * misleading. Two messages are equal when they have the same id, topic, partition and offset.
 * Public constructor so handlers can be unit-tested without Kafka.
 */
public final class Message {
    private final UUID messageId;
    private final String topic;
    private final int partition;
    private final long offset;
    private final long timestamp;
    private final byte[] key;
    private final Map<String, String> headers;
    private final byte[] payload;
    private final AvroCodec codec;

    /**
     * @param messageId the message id
     * @param topic the source topic
     * @param partition the source partition
     * @param offset the record's offset
     * @param timestamp the record's Kafka timestamp, epoch milliseconds
     * @param key the record key, or null
     * @param headers the headers, decoded as UTF-8 (the last value wins for a repeated name)
     * @param payload the record value, or null for a tombstone
     * @param codec the codec for {@link #payload(Class)}
     * @throws NullPointerException when messageId, topic, headers or codec is null
     */
    public Message(
            UUID messageId,
            String topic,
            int partition,
            long offset,
            long timestamp,
            byte[] key,
            Map<String, String> headers,
            byte[] payload,
            AvroCodec codec) {
        this.messageId = Objects.requireNonNull(messageId, "messageId may not be null");
        this.topic = Objects.requireNonNull(topic, "topic may not be null");
        this.partition = partition;
        this.offset = offset;
        this.timestamp = timestamp;
        this.key = key;
        this.headers = Map.copyOf(Objects.requireNonNull(headers, "headers may not be null"));
        this.payload = payload;
        this.codec = Objects.requireNonNull(codec, "codec may not be null");
    }

    /** @return the message id, the dedup identity */
    public UUID messageId() {
        return messageId;
    }

    /** @return the source topic */
    public String topic() {
        return topic;
    }

    /** @return the source partition */
    public int partition() {
        return partition;
    }

    /** @return the record's offset; not an identity (a redelivered message has another offset) */
    public long offset() {
        return offset;
    }

    /** @return the record's Kafka timestamp, epoch milliseconds */
    public long timestamp() {
        return timestamp;
    }

    /** @return the raw key bytes (not a copy), or null */
    public byte[] key() {
        return key;
    }

    /** @return the key decoded as UTF-8 (the relay writes string keys), or null */
    public String keyAsString() {
        return key == null ? null : new String(key, StandardCharsets.UTF_8);
    }

    /** @return all headers, decoded as UTF-8; unmodifiable */
    public Map<String, String> headers() {
        return headers;
    }

    /**
     * @param name a header name, e.g. {@link dev.outbox.core.OutboxHeaders#MESSAGE_TYPE}
     * @return its value, if present
     */
    public Optional<String> header(String name) {
        return Optional.ofNullable(headers.get(name));
    }

    /** @return the raw payload bytes (not a copy), or null for a tombstone */
    public byte[] payload() {
        return payload;
    }

    /**
     * Decodes the payload into {@code type}, with the codec its {@code content-type} header names:
     * {@value dev.outbox.schemas.JsonCodec#MEDIA_TYPE} with Jackson ({@link JsonCodec#create()}),
     * anything else as Avro single-object encoding with the reader schema of {@code type} (the writer
     * schema is found by the fingerprint in the payload; the reader's own schema is always known).
     * For JSON read with another mapper, use {@code JsonCodec.using(mapper).decode(payload(), type)}.
     *
     * @param type the class to read into: any Jackson-readable type for JSON, a generated Avro class
     *     for Avro
     * @param <T> the type
     * @return the decoded value
     * @throws NullPointerException when the payload is null (a tombstone)
     * @throws IllegalArgumentException when an Avro payload is not single-object encoded, or {@code
     *     type} is not an Avro class for an Avro payload
     * @throws dev.outbox.schemas.JsonCodecException when a JSON payload does not fit {@code type}
     * @throws dev.outbox.schemas.UnknownSchemaException when the Avro writer schema is not registered
     * @throws dev.outbox.schemas.IncompatibleSchemaException when {@code type} cannot read it
     */
    public <T> T payload(Class<T> type) {
        Objects.requireNonNull(type, "type may not be null");
        if (payload == null) {
            throw new NullPointerException("message " + messageId + " at " + topic + "-" + partition + "@" + offset
                    + " has no payload (a tombstone); check payload() != null before decoding");
        }
        String contentType = headers.get(OutboxHeaders.CONTENT_TYPE);
        if (JsonCodec.isJson(contentType)) {
            return JsonCodec.create().decode(payload, type);
        }
        if (!SpecificRecord.class.isAssignableFrom(type)) {
            throw new IllegalArgumentException("message " + messageId + " has content type " + contentType
                    + ", which payload(Class) reads as Avro, but " + type.getName() + " is not a generated Avro class");
        }
        return type.cast(codec.decode(payload, type.asSubclass(SpecificRecord.class)));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Message m
                && messageId.equals(m.messageId)
                && topic.equals(m.topic)
                && partition == m.partition
                && offset == m.offset;
    }

    @Override
    public int hashCode() {
        return Objects.hash(messageId, topic, partition, offset);
    }

    @Override
    public String toString() {
        return "Message[id=" + messageId + ", " + topic + "-" + partition + "@" + offset
                + ", key=" + keyAsString() + ", payload=" + (payload == null ? "null" : payload.length + " bytes")
                + ", headers=" + headers.keySet() + "]";
    }
}
