package dev.outbox.relay.internal;

import java.time.OffsetDateTime;
import java.util.UUID;

/**
 * One publishable row of {@code outbox_message}, as read by a shard loop. The payload is let go once
 * the record is handed to the producer (which copies it into its own buffer), so that a batch waiting
 * for its acks keeps only what the delete and the error handling need.
 */
final class OutboxRow {
    private final long id;
    private final UUID messageId;
    private final String topic;
    private final String key;
    private final String type;
    private final String contentType;
    private final String headersJson;
    private final OffsetDateTime createdAt;
    private byte[] payload;

    OutboxRow(
            long id,
            UUID messageId,
            String topic,
            String key,
            String type,
            String contentType,
            String headersJson,
            byte[] payload,
            OffsetDateTime createdAt) {
        this.id = id;
        this.messageId = messageId;
        this.topic = topic;
        this.key = key;
        this.type = type;
        this.contentType = contentType;
        this.headersJson = headersJson;
        this.payload = payload;
        this.createdAt = createdAt;
    }

    long id() {
        return id;
    }

    UUID messageId() {
        return messageId;
    }

    String topic() {
        return topic;
    }

    String key() {
        return key;
    }

    String type() {
        return type;
    }

    String contentType() {
        return contentType;
    }

    String headersJson() {
        return headersJson;
    }

    OffsetDateTime createdAt() {
        return createdAt;
    }

    /** @return the payload's length while the row holds it, else 0 (a tombstone, or taken already) */
    int payloadSize() {
        byte[] p = payload;
        return p == null ? 0 : p.length;
    }

    /** Sets the payload a read left out for its size and fetched afterwards ({@link PayloadCap}). */
    void fillPayload(byte[] payload) {
        this.payload = payload;
    }

    /**
     * @return the payload (null is a tombstone); the row lets go of it, so it is taken once, when the
     *     record is sent (a row is never sent twice: after a failure the shard reads the table again)
     */
    byte[] takePayload() {
        byte[] p = payload;
        payload = null;
        return p;
    }
}
