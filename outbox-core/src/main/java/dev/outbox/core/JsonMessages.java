package dev.outbox.core;

import dev.outbox.schemas.JsonCodec;
import java.util.Objects;

/**
 * Builds outbox messages whose payload is JSON, written by Jackson: the typed append for services
 * that exchange plain Java types rather than Avro classes.
 *
 * <pre>{@code
 * record OrderPlaced(String orderId, long amountCents) {}
 *
 * JsonMessages json = JsonMessages.create();
 * dsl.transaction(tx -> {
 *   tx.dsl().insertInto(ORDERS).set(...).execute();
 *   outbox.append(tx.dsl(), json.message("orders", orderId, new OrderPlaced(orderId, 1250)));
 * });
 * }</pre>
 *
 * <p>The message's content type is {@value JsonCodec#MEDIA_TYPE}, which tells readers to decode
 * it with JSON (consumer-dedup's {@code Message.payload(Class)} does so by itself); its type is
 * the payload's full class name unless given. Thread-safe.
 */
public final class JsonMessages {
    private static final JsonMessages DEFAULT = new JsonMessages(JsonCodec.create());

    private final JsonCodec codec;

    private JsonMessages(JsonCodec codec) {
        this.codec = codec;
    }

    /** @return messages written by {@link JsonCodec#create()}'s mapper */
    public static JsonMessages create() {
        return DEFAULT;
    }

    /**
     * @param codec the codec to write payloads with, for example {@code
     *     JsonCodec.using(mapperWithJavaTimeModule)}
     * @return messages written by that codec
     * @throws NullPointerException when codec is null
     */
    public static JsonMessages using(JsonCodec codec) {
        return new JsonMessages(Objects.requireNonNull(codec, "codec may not be null"));
    }

    /**
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null} for a message without one; not empty
     * @param payload the value to write as JSON
     * @return the message, typed with the payload's full class name
     * @throws NullPointerException when payload is null (a tombstone is {@code OutboxMessage.of(...)}
     *     with a null payload)
     * @throws IllegalArgumentException when the topic is not a valid Kafka topic name, or the key is
     *     empty, too long or holds what PostgreSQL's text cannot store (see {@link OutboxMessage})
     * @throws dev.outbox.schemas.JsonCodecException when Jackson cannot write the payload
     */
    public OutboxMessage message(String topic, String key, Object payload) {
        Objects.requireNonNull(
                payload, "payload may not be null; a tombstone is OutboxMessage.of(...) with a null payload");
        return message(topic, key, payload.getClass().getName(), payload);
    }

    /**
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null} for a message without one; not empty
     * @param type the message type, for example a name both sides agree on ({@code OrderPlaced})
     * @param payload the value to write as JSON
     * @return the message
     * @throws NullPointerException when type or payload is null
     * @throws IllegalArgumentException when the topic is not a valid Kafka topic name, or the key is
     *     empty, too long or holds what PostgreSQL's text cannot store (see {@link OutboxMessage})
     * @throws dev.outbox.schemas.JsonCodecException when Jackson cannot write the payload
     */
    public OutboxMessage message(String topic, String key, String type, Object payload) {
        return OutboxMessage.of(topic, key, type, JsonCodec.MEDIA_TYPE, codec.encode(payload));
    }
}
